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
//! | `settled␟<program>␟<statement id>` | [`super::model::SettledStatement`]: the inputs of that finalised statement's lines when a later finalised statement last repriced it and applied every target in full; repricing it with the same inputs adjusts nothing, whatever the rules say (absent in stores finalised before it existed: nothing is derived, the next finalised repricing writes it) |

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
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
    fn apply(&self, batch: Vec<(String, Option<Value>)>) -> Result<(), BookError>;
    /// Makes everything applied so far survive a process crash.
    fn flush(&self) -> Result<(), BookError>;
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
    /// Opens the `statements` tree of a store.
    pub fn open(store: &crate::store::Store) -> Result<StoreBook, BookError> {
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
    fn apply(&self, batch: Vec<(String, Option<Value>)>) -> Result<(), BookError> {
        self.tree
            .apply(batch)
            .map_err(|e| BookError::Store(e.to_string()))
    }
    fn flush(&self) -> Result<(), BookError> {
        self.store
            .fsync()
            .map_err(|e| BookError::Store(e.to_string()))
    }
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
    fn apply(&self, batch: Vec<(String, Option<Value>)>) -> Result<(), BookError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            match v {
                Some(v) => b.insert(
                    k.as_bytes(),
                    serde_json::to_vec(&v).map_err(|e| BookError::Store(e.to_string()))?,
                ),
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

/// Encodes a value.
pub fn encode<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
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
    fn apply(&self, batch: Vec<(String, Option<Value>)>) -> Result<(), BookError> {
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
