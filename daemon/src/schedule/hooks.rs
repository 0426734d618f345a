//! Post-sync hooks: what runs after a connector's sync succeeded.
//!
//! The scheduler calls [`run_post_sync`] on a blocking thread after every
//! successful run of `reckon run`, with the change-sequence range the run
//! produced (`seq_before..=seq_after`, empty when nothing changed). Each hook
//! decides for itself whether the event concerns it (e.g. reconcile: a sync
//! of a connector that feeds one of its programs; statements and KPI
//! summaries: their own schedules, checked against `now`).
//!
//! To add a hook: implement [`PostSync`] in your module and add one line to
//! [`registered`]. A hook's error is logged with the hook's name and never
//! fails the sync (its data is committed already).

use crate::config::Config;
use crate::store::Store;
use plugin_api::protocol::PluginKind;

/// A scheduled hook's runs in this process, for `/status` and `/metrics`:
/// the statement drafts of a program ([`crate::payout::hook::DraftRuns`])
/// and the KPI summaries ([`crate::kpi::hook::KpiRuns`]).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct HookRuns {
    /// When the hook last did its work.
    pub last_ok_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it last failed (cleared by the next success).
    pub last_error_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it last failed (cleared by the next success).
    pub last_error: Option<String>,
    /// Failed runs since the last success: a fire of the hook's schedule
    /// counted once, however many syncs retried it (ops QA32a L3: every
    /// sync's retry was counted, so the figure grew with the connectors).
    pub consecutive_failures: u64,
    /// Runs that succeeded since the start.
    pub ok_total: u64,
    /// Runs that failed since the start (counted as
    /// `consecutive_failures`).
    pub failed_total: u64,
    /// When the last counted failure was: a failure is counted again only
    /// after a fire of the schedule since.
    #[serde(skip)]
    pub(crate) counted_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl HookRuns {
    /// None yet.
    pub const NONE: HookRuns = HookRuns {
        last_ok_at: None,
        last_error_at: None,
        last_error: None,
        consecutive_failures: 0,
        ok_total: 0,
        failed_total: 0,
        counted_at: None,
    };

    /// Records a run at `at` that succeeded (`error` none) or failed; true
    /// when `error` is new (not the run before's). A failure is counted
    /// when it is the first since the last success, or the schedule fired
    /// since the last one counted (`fired_since(t)`: a fire after `t`, up
    /// to `at`): the syncs retrying one fire count once.
    pub(crate) fn record(
        &mut self,
        at: chrono::DateTime<chrono::Utc>,
        error: Option<&str>,
        fired_since: impl FnOnce(chrono::DateTime<chrono::Utc>) -> bool,
    ) -> bool {
        match error {
            None => {
                *self = HookRuns {
                    last_ok_at: Some(at),
                    ok_total: self.ok_total + 1,
                    failed_total: self.failed_total,
                    ..HookRuns::NONE
                };
                false
            }
            Some(e) => {
                let new = self.last_error.as_deref() != Some(e);
                self.last_error = Some(e.to_owned());
                self.last_error_at = Some(at);
                if self.counted_at.is_none_or(fired_since) {
                    self.consecutive_failures += 1;
                    self.failed_total += 1;
                    self.counted_at = Some(at);
                }
                new
            }
        }
    }
}

/// What a hook is told about a finished sync.
#[derive(Debug)]
pub struct SyncEvent<'a> {
    /// The store (records of the sync are committed and flushed).
    pub store: &'a Store,
    /// The config the daemon runs with.
    pub config: &'a Config,
    /// The connector that synced.
    pub connector: &'a str,
    /// Its plugin's kind (ad network, affiliate, orders).
    pub kind: PluginKind,
    /// Last change sequence before the run.
    pub seq_before: u64,
    /// Last change sequence after the run (equal: nothing changed).
    pub seq_after: u64,
}

/// Something that runs after a successful sync.
pub trait PostSync: Send + Sync {
    /// Name for logs.
    fn name(&self) -> &'static str;
    /// Runs the hook. Errors are logged, not propagated.
    fn after_sync(&self, event: &SyncEvent<'_>) -> Result<(), String>;
}

/// The hooks the daemon runs, in order. Other modules add theirs here
/// (reconcile first, then statements and KPIs that read its decisions).
pub fn registered() -> Vec<Box<dyn PostSync>> {
    vec![
        // Reconcile programs fed by the synced connector (issue 6).
        Box::new(crate::reconcile::ReconcileAfterSync),
        // Statement drafts on each program's `draft_schedule` (issue 7).
        Box::new(crate::payout::hook::StatementDrafts),
        // KPI summaries on their `[kpi.summaries]` schedule (issue 8).
        Box::new(crate::kpi::hook::KpiSummaries),
    ]
}

/// Post-sync hooks of this process run one event at a time: syncs finish
/// concurrently (`max_concurrent_syncs`), and two reconcile runs of one
/// program, or two statement draft runs, must not interleave (each reads
/// and rewrites whole decision buckets / one staging directory).
/// Commands the daemon runs for a client that write decisions or
/// statements (`reckon reconcile`, `statements generate|finalize`) take
/// the same turn ([`exclusive`]).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for the turn to write decisions and statements in this process.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    // A hook that panicked poisoned nothing it shares with the next one.
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs every registered hook for one event, after any other event's hooks
/// in this process have finished.
pub fn run_post_sync(event: &SyncEvent<'_>) {
    run_hooks(&registered(), event);
}

fn run_hooks(hooks: &[Box<dyn PostSync>], event: &SyncEvent<'_>) {
    let _turn = exclusive();
    for hook in hooks {
        // A bug in one hook (a panic) is that hook's failure, logged as
        // one, not a silent end of the hooks after it (QA20 R20-1: the KPI
        // summaries panicked with no ERROR line).
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook.after_sync(event)));
        let result = run.unwrap_or_else(|payload| {
            Err(format!(
                "internal error (a bug, please report it): {}; the next sync runs it again",
                crate::panic_message(&*payload)
            ))
        });
        match result {
            Ok(()) => tracing::debug!(
                hook = hook.name(),
                connector = event.connector,
                "post-sync hook done"
            ),
            Err(e) => {
                tracing::error!(hook = hook.name(), connector = event.connector, error = %e, "post-sync hook failed")
            }
        }
    }
    // A full reconcile or the drafts of a large program may have taken a
    // GB; the daemon runs on, so hand the freed memory back to the system.
    crate::release_free_memory();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts how many of its runs are in progress at once.
    struct Overlap {
        inside: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl PostSync for Overlap {
        fn name(&self) -> &'static str {
            "overlap"
        }
        fn after_sync(&self, _: &SyncEvent<'_>) -> Result<(), String> {
            let n = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(n, Ordering::SeqCst);
            for _ in 0..200 {
                std::thread::yield_now();
            }
            self.inside.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn hooks_of_concurrent_syncs_run_one_event_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = crate::config::parse("", "t.toml").unwrap();
        let (inside, most) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
        std::thread::scope(|scope| {
            for _ in 0..8 {
                let hooks: Vec<Box<dyn PostSync>> = vec![Box::new(Overlap {
                    inside: Arc::clone(&inside),
                    most: Arc::clone(&most),
                })];
                let (store, config) = (&store, &config);
                scope.spawn(move || {
                    for _ in 0..25 {
                        run_hooks(
                            &hooks,
                            &SyncEvent {
                                store,
                                config,
                                connector: "c",
                                kind: PluginKind::Affiliate,
                                seq_before: 0,
                                seq_after: 1,
                            },
                        );
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    struct Panics;
    impl PostSync for Panics {
        fn name(&self) -> &'static str {
            "panics"
        }
        fn after_sync(&self, _: &SyncEvent<'_>) -> Result<(), String> {
            panic!("Addition overflowed")
        }
    }

    /// QA20 R20-1: a hook that panicked ended the hooks after it, with no
    /// ERROR line; it is now that hook's failure, and the others run.
    #[test]
    fn a_panicking_hook_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = crate::config::parse("", "t.toml").unwrap();
        let (inside, most) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
        let hooks: Vec<Box<dyn PostSync>> = vec![
            Box::new(Panics),
            Box::new(Overlap {
                inside,
                most: Arc::clone(&most),
            }),
        ];
        run_hooks(
            &hooks,
            &SyncEvent {
                store: &store,
                config: &config,
                connector: "c",
                kind: PluginKind::Affiliate,
                seq_before: 0,
                seq_after: 1,
            },
        );
        assert_eq!(most.load(Ordering::SeqCst), 1, "the hook after it ran");
        // The turn is free again.
        drop(exclusive());
    }
}
