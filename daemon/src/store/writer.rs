//! Pages committed on a dedicated thread, in submission order, while the
//! caller prepares the next one.
//!
//! A sync spends its time in three places: the plugin (and its HTTP), the
//! host decoding and validating records, and the store writing them. With
//! [`PageWriter`] the store writes page *n* while the session produces page
//! *n + 1* (and encodes it: [`Store::prepare_page`] runs on the caller's
//! thread, [`Store::commit_prepared`] on the writer's). At most `depth` pages wait besides the one being written
//! ([`PageWriter::submit`] blocks when the queue is full), so memory stays
//! bounded.
//!
//! Commit semantics do not change: each page is still one
//! [`Store::commit_page`], pages commit in the order submitted, and after a
//! failed page the writer commits nothing more (a later page's checkpoint
//! must never cover records of a page that was not stored). The failure is
//! returned by the next `submit` or by [`PageWriter::drain`]; pages queued
//! behind it are dropped, exactly like the records after the last checkpoint
//! of a failed session.

use super::{CommitStats, PreparedPage, Store, StoreError};
use chrono::{DateTime, Utc};
use plugin_api::protocol::{Checkpoint, Record};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Mutex;

/// One committed page.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// What the page did.
    pub stats: CommitStats,
    /// The checkpoint committed with it.
    pub checkpoint: Option<Checkpoint>,
}

struct Job {
    page: PreparedPage,
    checkpoint: Option<Checkpoint>,
    now: DateTime<Utc>,
}

/// A store writer thread with a bounded queue of pages.
pub struct PageWriter {
    jobs: Option<SyncSender<Job>>,
    /// In a mutex only so the writer is `Sync` (session sinks must be);
    /// only the owner touches it.
    results: Mutex<Receiver<Result<Committed, StoreError>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    in_flight: usize,
    failed: bool,
}

impl std::fmt::Debug for PageWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageWriter")
            .field("in_flight", &self.in_flight)
            .field("failed", &self.failed)
            .finish()
    }
}

impl PageWriter {
    /// Starts the writer thread; up to `depth` pages wait besides the one
    /// being written (`depth` 0 still overlaps one page).
    pub fn new(store: Store, depth: usize) -> std::io::Result<PageWriter> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(depth);
        let (tx, results) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("reckon-store-writer".into())
            .spawn(move || {
                for job in rx {
                    let r = store
                        .commit_prepared(job.page, job.checkpoint.as_ref(), job.now)
                        .map(|stats| Committed {
                            stats,
                            checkpoint: job.checkpoint,
                        });
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        // Nothing after a failed page may be committed.
                        return;
                    }
                }
            })?;
        Ok(PageWriter {
            jobs: Some(jobs),
            results: Mutex::new(results),
            thread: Some(thread),
            in_flight: 0,
            failed: false,
        })
    }

    /// Encodes the page on the calling thread ([`Store::prepare_page`]),
    /// queues it (blocking while the queue is full) and returns the pages
    /// committed since the last call, in order; an error if one of them
    /// failed (then nothing more is committed).
    pub fn submit(
        &mut self,
        source: &str,
        records: Vec<Record>,
        checkpoint: Option<Checkpoint>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Committed>, StoreError> {
        let mut done = self.ready()?;
        let job = Job {
            page: Store::prepare_page(source, &records),
            checkpoint,
            now,
        };
        drop(records);
        let sent = match &self.jobs {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        };
        if !sent {
            // The writer stopped: it failed on a page; report that failure.
            done.extend(self.drain()?);
            return Err(self.stopped());
        }
        self.in_flight += 1;
        Ok(done)
    }

    /// Waits until every submitted page is committed; returns those not yet
    /// returned, in order, or the first failure.
    pub fn drain(&mut self) -> Result<Vec<Committed>, StoreError> {
        let mut done = Vec::new();
        while self.in_flight > 0 {
            let r = self
                .results
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .recv();
            match r {
                Ok(r) => done.push(self.settle(r)?),
                Err(_) => return Err(self.stopped()),
            }
        }
        Ok(done)
    }

    fn ready(&mut self) -> Result<Vec<Committed>, StoreError> {
        let mut done = Vec::new();
        loop {
            let r = self
                .results
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .try_recv();
            match r {
                Ok(r) => done.push(self.settle(r)?),
                Err(TryRecvError::Empty) => return Ok(done),
                Err(TryRecvError::Disconnected) if self.in_flight == 0 => return Ok(done),
                Err(TryRecvError::Disconnected) => return Err(self.stopped()),
            }
        }
    }

    fn settle(&mut self, r: Result<Committed, StoreError>) -> Result<Committed, StoreError> {
        self.in_flight -= 1;
        if r.is_err() {
            self.failed = true;
            // Pages queued behind the failed one are dropped uncommitted.
            self.in_flight = 0;
            self.jobs = None;
        }
        r
    }

    fn stopped(&mut self) -> StoreError {
        self.in_flight = 0;
        self.jobs = None;
        StoreError::Io {
            path: "store writer".into(),
            message: "the store writer stopped after a failed page; nothing after it was committed"
                .into(),
        }
    }
}

impl Drop for PageWriter {
    fn drop(&mut self) {
        // Closing the queue ends the thread after the pages already queued.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::protocol::{Conversion, ConversionStatus, EventType, RecordKind, Utm};

    fn conv(id: &str) -> Record {
        Record::Conversion(Conversion {
            source: "net".into(),
            external_id: id.into(),
            order_id: None,
            click_id: None,
            clicked_at: None,
            partner_id: "p".into(),
            partner_name: None,
            campaign_id: None,
            event_type: EventType::Sale,
            occurred_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            sale_amount: None,
            commission: None,
            status: ConversionStatus::Pending,
            status_changed_at: None,
            locked_at: None,
            coupon: None,
            utm: Utm::default(),
        })
    }

    fn cp(n: i64) -> Checkpoint {
        Checkpoint {
            stream: "conversions".into(),
            watermark: DateTime::from_timestamp(1_700_000_000 + n, 0).unwrap(),
            state: serde_json::json!({ "page": n }),
            covers: None,
        }
    }

    #[test]
    fn pages_commit_in_order_and_every_result_is_returned_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = PageWriter::new(store.clone(), 1).unwrap();
        let mut results = Vec::new();
        for p in 0..50 {
            let recs = (0..20).map(|i| conv(&format!("{p:03}-{i:02}"))).collect();
            results.extend(w.submit("net", recs, Some(cp(p)), Utc::now()).unwrap());
        }
        results.extend(w.drain().unwrap());
        assert_eq!(results.len(), 50);
        for (p, r) in results.iter().enumerate() {
            assert_eq!(r.stats.new, 20);
            assert_eq!(r.checkpoint, Some(cp(p as i64)));
        }
        assert!(w.drain().unwrap().is_empty());
        assert_eq!(
            store.count_records(RecordKind::Conversion, Some("net")),
            1000
        );
        assert_eq!(store.checkpoints("net").unwrap()["conversions"], cp(49));
        // Sequence numbers follow the submission order.
        let first = store
            .get_record(RecordKind::Conversion, "net", "000-00")
            .unwrap()
            .unwrap();
        let last = store
            .get_record(RecordKind::Conversion, "net", "049-19")
            .unwrap()
            .unwrap();
        assert_eq!((first.seq, last.seq), (1, 1000));
    }

    #[test]
    fn nothing_is_committed_after_a_failed_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .commit_page("net", &[conv("bad")], None, Utc::now())
            .unwrap();
        // A corrupt stored value makes the commit of a page holding that key
        // fail (the store refuses to overwrite what it cannot read).
        store.put_raw_record(RecordKind::Conversion, "net", "bad", &[9u8]);
        let mut w = PageWriter::new(store.clone(), 4).unwrap();
        let mut outcome = Ok(Vec::new());
        for p in 0..6 {
            let recs = if p == 1 {
                vec![conv("bad")]
            } else {
                vec![conv(&format!("ok-{p}"))]
            };
            outcome = w.submit("net", recs, Some(cp(p)), Utc::now());
            if outcome.is_err() {
                break;
            }
        }
        let err = match outcome {
            Err(e) => e,
            Ok(_) => w.drain().unwrap_err(),
        };
        assert!(
            matches!(err, StoreError::Corrupt { .. }) || err.to_string().contains("stopped"),
            "{err}"
        );
        // Page 0 committed; nothing after the failed page 1.
        assert_eq!(store.checkpoints("net").unwrap()["conversions"], cp(0));
        for p in 2..6 {
            assert!(store
                .get_record(RecordKind::Conversion, "net", &format!("ok-{p}"))
                .unwrap()
                .is_none());
        }
        // Later submits keep failing instead of committing.
        assert!(w
            .submit("net", vec![conv("late")], None, Utc::now())
            .is_err());
        assert!(store
            .get_record(RecordKind::Conversion, "net", "late")
            .unwrap()
            .is_none());
    }
}
