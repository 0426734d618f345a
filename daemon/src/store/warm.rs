//! Warming sled's page cache at daemon start (`[daemon] store_cache_mb`).
//!
//! A cache as large as the store makes an incremental reconciliation about
//! twice as fast, but only for the pages the daemon has read since it
//! started: each run reads ~60k random keys, a different set each time,
//! so without a warm-up the gain arrives over many runs. [`Store::warm`]
//! reads what those runs read, in key order (leaf after leaf: ~2 s for the
//! 1.1 GB store of 1M orders and 1.1M claims): the `recon` tree (decisions
//! and match indexes), then the order and claim records. It stops at a
//! share of the cache ([`WARM_SHARE`]), since reading more would evict what
//! it read first.

use super::{kind_char, Store, StoreError, P_BLOCK};
use plugin_api::protocol::RecordKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The share of the cache the warm-up fills, in percent: the rest is left
/// for the pages syncs, statements and KPI summaries read.
pub const WARM_SHARE: u64 = 75;

/// What [`Store::warm`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Warmed {
    /// Bytes of keys and values read.
    pub bytes: u64,
    /// Keys read.
    pub keys: u64,
    /// Every page it meant to read was read (not stopped by its budget or
    /// by the daemon stopping).
    pub complete: bool,
}

impl Store {
    /// Reads the `recon` tree, then the order and claim records, into
    /// sled's cache until `budget` bytes are read or `stop` is set. Reads
    /// nothing else; changes nothing.
    pub fn warm(&self, budget: u64, stop: &AtomicBool) -> Result<Warmed, StoreError> {
        let mut w = Warmed::default();
        let recon = self.domain("recon")?;
        let trees: [(&sled::Tree, Vec<u8>); 3] = [
            (&recon.tree, Vec::new()),
            (
                &self.inner.data,
                vec![P_BLOCK, kind_char(RecordKind::Order)],
            ),
            (
                &self.inner.data,
                vec![P_BLOCK, kind_char(RecordKind::Conversion)],
            ),
        ];
        for (tree, prefix) in trees {
            for (i, kv) in tree.scan_prefix(&prefix).enumerate() {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                w.keys += 1;
                w.bytes += (k.len() + v.len()) as u64;
                // The flag every 256 keys: a load, far cheaper than a key.
                if w.bytes >= budget || (i % 256 == 0 && stop.load(Ordering::Relaxed)) {
                    return Ok(w);
                }
            }
        }
        w.complete = true;
        Ok(w)
    }
}

/// A warm-up running on a thread of its own; dropping it stops the thread
/// (within 256 keys) and waits for it.
#[derive(Debug)]
pub struct Warming {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Warming {
    /// Starts warming `store`'s cache of `cache_mb` MiB ([`WARM_SHARE`] of
    /// it), logging what it read. Nothing to warm (the default cache, which
    /// the pages a run reads fill anyway) or no thread: `None`.
    pub fn start(store: &Store, cache_mb: u64) -> Option<Warming> {
        if cache_mb <= super::DEFAULT_CACHE_MB {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let budget = (cache_mb << 20) / 100 * WARM_SHARE;
        let (store, flag) = (store.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("reckon-warm".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                match store.warm(budget, &flag) {
                    Ok(w) => tracing::info!(
                        read_mb = w.bytes >> 20,
                        keys = w.keys,
                        secs = format!("{:.1}", started.elapsed().as_secs_f64()),
                        store_cache_mb = cache_mb,
                        complete = w.complete,
                        "store cache warmed: reconciliation data, then order and claim records, read into the cache"
                    ),
                    Err(e) => tracing::warn!(
                        "store cache warm-up stopped: {e}; the cache fills as the daemon reads"
                    ),
                }
            })
            .ok()?;
        Some(Warming {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Warming {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::order;
    use crate::test_support::conversion;

    fn store_with_data() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = chrono::Utc::now();
        let orders: Vec<_> = (0..300).map(|i| order(&format!("o{i}"), 1000, 0)).collect();
        let claims: Vec<_> = (0..300)
            .map(|i| conversion(&format!("c{i}"), 100))
            .collect();
        store.commit_page("shop", &orders, None, now).unwrap();
        store.commit_page("net", &claims, None, now).unwrap();
        let recon = store.domain("recon").unwrap();
        recon
            .apply(vec![("p/s".into(), Some(serde_json::json!({"v": 3})))])
            .unwrap();
        (dir, store)
    }

    #[test]
    fn reads_recon_then_orders_then_claims_within_its_budget() {
        let (_dir, store) = store_with_data();
        let stop = AtomicBool::new(false);
        let all = store.warm(u64::MAX, &stop).unwrap();
        assert!(all.complete);
        assert!(all.keys >= 3, "{all:?}");
        assert!(all.bytes > 300 * 20, "{all:?}");
        // A budget stops it at the key that reaches it.
        let some = store.warm(all.bytes / 2, &stop).unwrap();
        assert!(!some.complete);
        assert!(
            some.bytes >= all.bytes / 2 && some.bytes < all.bytes,
            "{some:?}"
        );
        // So does the flag, at once.
        stop.store(true, Ordering::Relaxed);
        let stopped = store.warm(u64::MAX, &stop).unwrap();
        assert_eq!((stopped.keys, stopped.complete), (1, false));
    }

    #[test]
    fn the_default_cache_is_not_warmed_and_a_warming_stops_when_dropped() {
        let (_dir, store) = store_with_data();
        assert!(Warming::start(&store, crate::store::DEFAULT_CACHE_MB).is_none());
        let w = Warming::start(&store, 1024).expect("a thread");
        drop(w);
        // The thread is gone: its clone of the store too.
        assert!(
            store
                .warm(u64::MAX, &AtomicBool::new(false))
                .unwrap()
                .complete
        );
    }
}
