//! The sled store. Owned by the daemon-core work (issue 3).
//!
//! CONTRACT (used by sync, reconcile, payout, kpi, server): the signatures in
//! this file are the narrow interface every other module codes against. The
//! bodies are filled in by the daemon-core work; keep the signatures (add,
//! don't change) so other modules keep compiling.
pub mod cli;

use chrono::{DateTime, Utc};
use plugin_api::protocol::{Checkpoint, Record, RecordKind};
use std::collections::BTreeMap;
use std::path::Path;

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

/// The store handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {}

impl Store {
    /// Opens (creating if needed) the store in `dir`, takes the directory
    /// lock, and runs migrations (logged, never silent).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Err(StoreError::Io {
            path: dir.display().to_string(),
            message: "store not built yet".into(),
        })
    }

    /// Upserts records of one source and (optionally) saves the checkpoint
    /// that covers them, in one transaction. Unchanged records write nothing;
    /// a changed record keeps its previous value as a [`Revision`].
    pub fn commit_page(
        &self,
        _source: &str,
        _records: &[Record],
        _checkpoint: Option<&Checkpoint>,
        _now: DateTime<Utc>,
    ) -> Result<CommitStats, StoreError> {
        Ok(CommitStats::default())
    }

    /// Makes everything committed so far durable (flush; see ARCHITECTURE.md).
    pub fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The committed checkpoints of a connector, by stream.
    pub fn checkpoints(&self, _source: &str) -> Result<BTreeMap<String, Checkpoint>, StoreError> {
        Ok(BTreeMap::new())
    }

    /// All records of a kind, optionally of one source, in key order.
    pub fn scan_records(
        &self,
        _kind: RecordKind,
        _source: Option<&str>,
    ) -> Box<dyn Iterator<Item = Result<Stored, StoreError>> + '_> {
        Box::new(std::iter::empty())
    }

    /// One record by kind, source and key.
    pub fn get_record(
        &self,
        _kind: RecordKind,
        _source: &str,
        _key: &str,
    ) -> Result<Option<Stored>, StoreError> {
        Ok(None)
    }

    /// Previous values of a record, oldest first.
    pub fn revisions(
        &self,
        _kind: RecordKind,
        _source: &str,
        _key: &str,
    ) -> Result<Vec<Revision>, StoreError> {
        Ok(Vec::new())
    }

    /// The highest change sequence number so far (0 for an empty store).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Changes with `seq > after`, in sequence order.
    pub fn changes_since(
        &self,
        _after: u64,
    ) -> Box<dyn Iterator<Item = Result<Change, StoreError>> + '_> {
        Box::new(std::iter::empty())
    }

    /// A named tree for a domain module's own data (`recon`, `statements`,
    /// `fx`, `kpi`, `postbacks`, ...). Values are JSON, versioned by the module.
    pub fn domain(&self, name: &str) -> Result<DomainTree, StoreError> {
        Err(StoreError::Io {
            path: name.into(),
            message: "store not built yet".into(),
        })
    }
}

/// A domain module's tree: ordered byte keys, JSON values, atomic batches.
#[derive(Debug, Clone)]
pub struct DomainTree {}

impl DomainTree {
    /// Reads and decodes one value.
    pub fn get<T: serde::de::DeserializeOwned>(&self, _key: &str) -> Result<Option<T>, StoreError> {
        Ok(None)
    }
    /// Decoded values whose key starts with `prefix`, in key order.
    pub fn scan_prefix<T: serde::de::DeserializeOwned + 'static>(
        &self,
        _prefix: &str,
    ) -> Box<dyn Iterator<Item = Result<(String, T), StoreError>> + '_> {
        Box::new(std::iter::empty())
    }
    /// Applies puts (`Some`) and deletes (`None`) atomically.
    pub fn apply(
        &self,
        _batch: Vec<(String, Option<serde_json::Value>)>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}
