//! The `action_updates` stream: actions that changed in the window although
//! their event date may lie before it, re-read whole from `/Actions`.
//!
//! Two passes per campaign over the session window, both plain `/Actions`
//! queries (same paging, 45-day limit, 10 × `PageSize` splitting and
//! checkpoints as the `actions` stream, see [`crate::actions`]):
//! 1. by **last-updated date** (`StartDate` / `EndDate`): modifications such
//!    as reversals and amount changes;
//! 2. by **locking date** (`LockingDateStart` / `LockingDateEnd`): actions
//!    that locked (PENDING → APPROVED) in the window, which Impact does not
//!    count as updates.
//!
//! Every row is a full action, upserted under its `Id`, so the store keeps
//! the new state as a revision. An action this session already emitted (from
//! the `actions` stream or the first pass) is skipped.
//!
//! What it is not: a reader of the `/ActionUpdates` changelog. Its rows carry
//! only deltas, so it would need one request per changed action to get the
//! action itself, through a single-action route the reference does not
//! document; the update-date filter on `/Actions` returns the same actions
//! whole, a page at a time.

use crate::actions::{read_passes, DateFilter, Repeats};
use crate::client::Client;
use crate::config::Settings;
use crate::ACTION_UPDATES;
use plugin_api::{Cx, PluginError};
use std::collections::HashSet;

/// The passes, in order.
pub const PASSES: &[DateFilter] = &[DateFilter::LastUpdated, DateFilter::Locking];

/// Reads both passes; `emitted` holds action ids already emitted this session
/// (they are skipped) and grows with the ones emitted here.
pub async fn read(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    emitted: &mut HashSet<String>,
) -> Result<(), PluginError> {
    read_passes(
        cx,
        client,
        settings,
        ACTION_UPDATES,
        PASSES,
        Repeats::Skip,
        emitted,
    )
    .await
}
