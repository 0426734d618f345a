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

/// Runs every registered hook for one event.
pub fn run_post_sync(event: &SyncEvent<'_>) {
    for hook in registered() {
        match hook.after_sync(event) {
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
}
