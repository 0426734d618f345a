//! Decisions as data: how a program's decisions and match indexes live in
//! the `recon` tree, and the full and incremental runs that keep them.
//!
//! **Logical entries.** A program's data is a sorted map of logical keys
//! (every component escaped so it holds no `/`):
//!
//! | logical key | value | what for |
//! |---|---|---|
//! | `d/<claim src>/<claim id>` | [`StoredDecision`] | the decision and the claim's match keys |
//! | `io/<norm id>/<order src>/<order id>` | [`OrderEntry`] under the order's own (primary) id, empty under an alt id | orders by normalised id; the order's match keys and the claims matched to it |
//! | `ic/<click>/<order src>/<order id>` | empty | orders by click id |
//! | `ik/<coupon>/<order src>/<order id>` | created_at | orders by coupon (coupon matching only) |
//! | `qo/<norm id>/<claim src>/<claim id>` | empty | claims quoting an order id they are not matched by |
//! | `qc/<click>/<claim src>/<claim id>` | empty | claims with a click id, not matched by order id or click |
//! | `qk/<coupon>/<claim src>/<claim id>` | empty | claims with a coupon, not matched by order id or click (coupon matching only) |
//! | `t/<time>/<claim src>/<claim id>` | empty | decisions that change with time alone |
//!
//! **Physical keys (FORMAT 2).** Writing one tree key per entry made sled
//! inserts most of a run, so entries are grouped into hash buckets (`P` =
//! escaped program id, `<b>` = 4 bytes big-endian):
//!
//! | tree key | value |
//! |---|---|
//! | `P/D/<b>` | the `d/` entries whose key hashes to `b` ([`D_BUCKETS`]) |
//! | `P/X/<b>` | the index entries whose `<kind>/<value>/` hashes to `b` ([`X_BUCKETS`]), so one lookup finds every entry of a value |
//! | `P/s` | [`ProgramState`]: FORMAT byte + JSON (with the bucket counts: other counts force a full run) |
//! | `P/t/<time>/<claim src>/<claim id>` | empty: one key each, scanned in time order |
//! | `P/L/<n>` (8 bytes big-endian) | the decision log: one value per incremental run, the logical entries it changed ([`codec::encode_log`]) |
//!
//! **The decision log (state FORMAT 3).** An incremental run does not
//! rewrite the buckets its changes fall in (~10k random sled writes for
//! 10k changed claims, 180–250 ms in the benchmark): it writes the
//! logical entries it changed, puts and deletes, as one log value, in the
//! atomic batch with its state. The program's logical map is the buckets
//! and `t/` keys with the log values laid over them in order ([`Log`]);
//! every reader does that ([`read_bucket`], [`each_in_buckets`],
//! [`logical_entries`]). A run that would take the log to
//! [`FOLD_ENTRIES`] entries or [`FOLD_VALUES`] values folds it instead:
//! its batch writes the buckets the log and its own changes fall in and
//! deletes every log value ([`fold`]); a full run folds the log first. A
//! FORMAT-2 tree is a FORMAT-3 tree without a log, read as it is.
//!
//! A bucket value is [`codec::FORMAT`], then its (logical key, value) pairs
//! in key order ([`codec::encode_bucket`]); decisions and order entries are
//! encoded by [`codec`] (no JSON). The hash is FNV-1a 64, fixed forever for
//! this FORMAT. A FORMAT-1 tree (one JSON value per logical key, state `v:
//! 1`) is never read: its state forces a full run, whose merge deletes every
//! old key (decisions are re-stamped with that run's `decided_at`).
//!
//! Claims matched by their order id (nearly all) need no reverse index:
//! the orders they could move to are found through the order index and the
//! claims lists of the orders already holding that id.
//!
//! A **full run** (first run, or the program's config or the FX table
//! changed, or the format did, or this run or the last saw the records as
//! of a past instant, [`super::backend::AsOf`]) judges every claim and rewrites the
//! program's buckets (merge with what is there: an unchanged bucket is not
//! written). An **incremental run** reads the change log since `P/s`'s seq
//! and re-judges the closure: touched claims; for each touched order (old
//! and new values): the claims matched to it, the claims matched to any
//! other order under one of its ids or click ids (it may win that tie now),
//! and the claims in the `q*` indexes under its ids, click ids and coupon;
//! claims whose time-based change is due; and every claim sharing an order
//! (old or new) with any of those. Everything else keeps its match and
//! contest, so the result equals a full run. It reads only the buckets of
//! those keys (each once, the log laid over them) and the `t/` keys due; with many claims to load,
//! worker threads read their records, buckets and candidate orders ahead
//! ([`ReconBackend`] is `Sync`). A decision whose judgement is unchanged
//! keeps its `decided_at` and is not rewritten.
//!
//! Crash safety: a full run folds the log (one batch), deletes `P/s`, and
//! writes `P/s` last, so a run cut short leaves no state and the next run
//! is a full one; an incremental run writes its log value (or the folded
//! buckets and the log's deletion) and the state in one atomic batch.
//! A full run's batches are applied by one writer thread, in order, while
//! the run judges the next pass ([`Writer`]): the state goes in the last
//! batch, after every other, and a failed batch fails the run. Readers
//! read no decisions without a state (part of a cut-short full run's may be
//! in the buckets): [`whole_run_state`].

use super::backend::KeyValue;
use super::backend::{KeyWrite, ReconBackend};
use super::codec;
use super::config::ProgramConfig;
use super::engine::{self, ClaimInput, Inputs, OrderInput};
use super::model::{Decision, MatchedBy, Outcome, RecordRef};
use super::packed::Packed;
use super::ReconcileError;
use crate::fx::FxTable;
use crate::store::{StoreError, Stored};
use chrono::{DateTime, Duration, Utc};
use plugin_api::protocol::{Record, RecordKind};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// Version of the program state this module writes: 3 since the decision
/// log (`P/L/<n>`, [`Log`]). A FORMAT-2 tree is the same without a log, so
/// it is read as it is ([`READ_FORMATS`]); an older version reading a
/// FORMAT-3 state takes it for another format and runs in full, deleting
/// the log.
const FORMAT: u32 = 3;
/// State formats whose decisions this version reads.
const READ_FORMATS: [u32; 2] = [2, 3];
/// Log entries at which an incremental run folds the decision log into the
/// buckets (in the same atomic batch as its own changes): about 16 MB of
/// log, which every reader of a program reads in full.
pub const FOLD_ENTRIES: usize = 65_536;
/// Log values at which an incremental run folds the log: a small program
/// whose runs change the same few entries again and again would otherwise
/// never reach [`FOLD_ENTRIES`] and grow a value a run.
const FOLD_VALUES: usize = 64;
/// Buckets holding decisions. More buckets make a full run write more keys;
/// fewer make an incremental run read more: sled reads a whole leaf node
/// (up to ~32 keys) to get one bucket. 2^19 (two decisions a bucket at 1M
/// claims) keeps a 10k-claim incremental run at ~0.7 s; 2^17 made it
/// 0.9–1.6 s straight after a full run, which it made ~1 s faster.
pub const D_BUCKETS: u32 = 1 << 19;
/// Buckets holding index entries.
pub const X_BUCKETS: u32 = 1 << 17;
/// Bytes of bucket values per batch during a full run. Small: sled keeps
/// every version of a leaf that a batch's inserts made until the batch
/// ends (its epoch guard is held throughout), so memory grew with the
/// batch (QA29-E M1: a first full run over 145k orders and no claims
/// peaked at 595 MB with 8 MiB batches, 182 MB with 256 KiB; bench (b)
/// 809–816 → 667–676 MiB, 13.8–14.7 → 12.8–13.8 s). A full run's crash
/// safety does not rest on its batches: the state key comes last.
const BATCH_BYTES: usize = 256 << 10;

/// Per-program bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramState {
    /// Value format version.
    pub v: u32,
    /// Every change up to this seq has been reconciled.
    pub last_seq: u64,
    /// [`ProgramConfig::fingerprint`] of the run.
    pub program: String,
    /// [`FxTable::fingerprint`] of the run.
    pub fx: String,
    /// [`D_BUCKETS`] and [`X_BUCKETS`] the tree was written with (other
    /// counts put keys in other buckets: a full run rewrites them).
    #[serde(default)]
    pub buckets: (u32, u32),
    /// The instant the run saw the records as of (`reckon reconcile
    /// --now`), if not the present: the next run is a full one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
    /// The run's `now`: every stored decision is as a full run at this
    /// instant would judge it (grace periods and lock dates compared with
    /// it). `reckon reconcile report` prints it (`judged_at`); none in a
    /// state written before 2026-11-29.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_at: Option<DateTime<Utc>>,
    /// How many of the program's stored decisions are payable: a full run
    /// counts them, an incremental run adds what it changed. None when not
    /// known (a state written before 2026-11-29, until the next full run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payable: Option<u64>,
}

/// A claim's match keys as last seen (normalised).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimKeys {
    /// Normalised order id.
    #[serde(default)]
    pub oid: Option<String>,
    /// Trimmed click id.
    #[serde(default)]
    pub click: Option<String>,
    /// Normalised coupon.
    #[serde(default)]
    pub coupon: Option<String>,
}

/// An order's match keys as last indexed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderKeys {
    /// Normalised primary and alt ids.
    pub ids: Vec<String>,
    /// Trimmed click ids.
    pub clicks: Vec<String>,
    /// Normalised coupon.
    pub coupon: Option<String>,
    /// Order creation time (coupon window filter).
    pub created_at: DateTime<Utc>,
}

/// What the order's primary index entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEntry {
    /// The order's match keys as indexed.
    pub keys: OrderKeys,
    /// Claims currently matched to the order, as (source, id), sorted.
    pub claims: Vec<(String, String)>,
}

/// A decision with the claim keys it was indexed under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDecision {
    /// The decision.
    pub decision: Decision,
    /// The claim's match keys.
    pub keys: ClaimKeys,
    /// When the decision changes with time alone, if it does.
    #[serde(default)]
    pub due: Option<DateTime<Utc>>,
}

/// What one program's run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProgramSummary {
    /// Program id.
    pub program: String,
    /// Whether every claim was judged (else only the affected closure).
    pub full: bool,
    /// Claims judged in this run.
    pub claims_judged: u64,
    /// Decisions new or different from the stored ones (in anything:
    /// outcome, amounts, reason, the rule's inputs, the record revisions).
    pub decisions_changed: u64,
    /// Of `decisions_changed`, those new or with a different outcome,
    /// basis or payable flag (the rest changed only in what they record:
    /// reason, inputs, revisions, e.g. after a config change).
    pub outcomes_changed: u64,
    /// Stored decisions of claims the run no longer saw (a full run `--now`
    /// before they were stored, or a connector no longer among the
    /// program's `claims`), deleted.
    pub decisions_removed: u64,
    /// `decisions_removed` by the claims connector of their claims (`""`
    /// when a stored key could not be read), so the output can name the
    /// cause (finance QA F8: a connector removed from `claims` read as
    /// "their claims were not stored yet").
    pub removed_by_source: BTreeMap<String, u64>,
    /// Judged claims by outcome.
    pub by_outcome: BTreeMap<Outcome, u64>,
    /// Of the claims judged in this run, those payable now (not the
    /// program's total: see `payable_total`).
    pub payable: u64,
    /// Every payable decision of the program after the run (from
    /// [`ProgramState::payable`]; none when not known yet).
    pub payable_total: Option<u64>,
    /// Change seq reconciled up to.
    pub last_seq: u64,
}

pub(crate) fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['%', '/']) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(s.replace('%', "%25").replace('/', "%2F"))
}

fn unesc(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    s.replace("%2F", "/").replace("%25", "%")
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

type Key2 = (String, String);

/// The last two `/`-components of a key, unescaped: (source, id).
fn tail_ref(key: &str) -> Option<Key2> {
    let mut it = key.rsplitn(3, '/');
    let id = it.next()?;
    let src = it.next()?;
    Some((unesc(src), unesc(id)))
}

/// Every tree key of a program starts with this.
pub(crate) fn program_prefix(p: &str) -> String {
    format!("{}/", esc(p))
}
pub(crate) fn state_key(p: &str) -> Vec<u8> {
    format!("{}/s", esc(p)).into_bytes()
}
fn decision_key(c: &Key2) -> String {
    format!("d/{}/{}", esc(&c.0), esc(&c.1))
}
/// The order's primary index entry: under its own normalised id.
fn primary_key(o: &Key2) -> String {
    let norm = engine::normalize_order_id(&o.1).unwrap_or_default();
    format!("io/{}/{}/{}", esc(&norm), esc(&o.0), esc(&o.1))
}
fn index_prefix(kind: &str, value: &str) -> String {
    format!("{kind}/{}/", esc(value))
}

/// FNV-1a, 64 bits: stable across builds and platforms.
fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Where a logical key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    /// In bucket `P/D/<b>`.
    D(u32),
    /// In bucket `P/X/<b>`.
    X(u32),
    /// Its own tree key `P/<logical key>` (`t/` entries).
    Direct,
}

fn slot(key: &str) -> Slot {
    if key.starts_with("t/") {
        Slot::Direct
    } else if key.starts_with("d/") {
        Slot::D((fnv(key.as_bytes()) % u64::from(D_BUCKETS)) as u32)
    } else {
        // `<kind>/<value>/<src>/<id>`: the bucket of `<kind>/<value>/`.
        let mut cut = key.len();
        for _ in 0..2 {
            cut = key[..cut].rfind('/').unwrap_or(0);
        }
        let head = &key[..(cut + 1).min(key.len())];
        Slot::X((fnv(head.as_bytes()) % u64::from(X_BUCKETS)) as u32)
    }
}

/// The bucket of every index entry under `prefix` (`<kind>/<value>/`).
fn prefix_slot(prefix: &str) -> Slot {
    Slot::X((fnv(prefix.as_bytes()) % u64::from(X_BUCKETS)) as u32)
}

fn slot_key(pp: &str, slot: Slot, logical: &str) -> Vec<u8> {
    let mut k = pp.as_bytes().to_vec();
    match slot {
        Slot::D(b) => {
            k.extend_from_slice(b"D/");
            k.extend_from_slice(&b.to_be_bytes());
        }
        Slot::X(b) => {
            k.extend_from_slice(b"X/");
            k.extend_from_slice(&b.to_be_bytes());
        }
        Slot::Direct => k.extend_from_slice(logical.as_bytes()),
    }
    k
}

/// The claim's normalised match keys.
pub fn claim_keys(c: &plugin_api::Conversion) -> ClaimKeys {
    ClaimKeys {
        oid: c.order_id.as_deref().and_then(engine::normalize_order_id),
        click: c
            .click_id
            .as_deref()
            .and_then(engine::normalize_click_id)
            .map(str::to_owned),
        coupon: c.coupon.as_deref().and_then(engine::normalize_coupon),
    }
}

/// The order's normalised match keys (sorted, deduplicated).
pub fn order_keys(o: &plugin_api::Order) -> OrderKeys {
    let mut ids: Vec<String> = std::iter::once(o.order_id.as_str())
        .chain(o.alt_ids.iter().map(String::as_str))
        .filter_map(engine::normalize_order_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut clicks: Vec<String> = o
        .click_ids
        .iter()
        .filter_map(|c| engine::normalize_click_id(c))
        .map(str::to_owned)
        .collect();
    clicks.sort_unstable();
    clicks.dedup();
    OrderKeys {
        ids,
        clicks,
        coupon: o.coupon.as_deref().and_then(engine::normalize_coupon),
        created_at: o.created_at,
    }
}

fn corrupt(key: &[u8], e: codec::CodecError) -> StoreError {
    StoreError::Corrupt {
        tree: "recon".into(),
        key: String::from_utf8_lossy(key).into_owned(),
        message: e.to_string(),
    }
}

fn decode_decision(key: &str, v: &[u8]) -> Result<StoredDecision, StoreError> {
    codec::decode_decision(v).map_err(|e| corrupt(key.as_bytes(), e))
}

fn decode_order(key: &str, v: &[u8]) -> Result<OrderEntry, StoreError> {
    codec::decode_order(v).map_err(|e| corrupt(key.as_bytes(), e))
}

/// The state as stored: FORMAT byte + JSON. A FORMAT-1 state (the store's
/// JSON codec: version byte 1 + JSON) reads too and forces a full run by its
/// `v`; anything unreadable counts as no state (a full run).
fn decode_state(v: &[u8]) -> Option<ProgramState> {
    match v.split_first() {
        Some((&(1..=3), json)) => serde_json::from_slice(json).ok(),
        _ => None,
    }
}

fn encode_state(s: &ProgramState) -> Vec<u8> {
    let mut v = vec![FORMAT as u8];
    // Serialising this plain struct cannot fail.
    serde_json::to_writer(&mut v, s).unwrap_or_default();
    v
}

/// The index keys of a decision (all but the decision itself), with values.
fn claim_index_keys(sd: &StoredDecision, coupons: bool) -> Vec<(String, Vec<u8>)> {
    let d = &sd.decision;
    let mut out = Vec::new();
    let by_id = d.matched_by == Some(MatchedBy::OrderId);
    let wanted = sd.keys.oid.is_some() && !by_id
        || sd.keys.click.is_some()
        || sd.keys.coupon.is_some()
        || sd.due.is_some();
    if !wanted {
        return out;
    }
    let tail = format!("{}/{}", esc(&d.claim.source), esc(&d.claim.id));
    let by_click = by_id || d.matched_by == Some(MatchedBy::ClickId);
    if let Some(oid) = sd.keys.oid.as_ref().filter(|_| !by_id) {
        out.push((format!("{}{tail}", index_prefix("qo", oid)), Vec::new()));
    }
    if let Some(click) = sd.keys.click.as_ref().filter(|_| !by_click) {
        out.push((format!("{}{tail}", index_prefix("qc", click)), Vec::new()));
    }
    if coupons && !by_click {
        if let Some(k) = &sd.keys.coupon {
            out.push((format!("{}{tail}", index_prefix("qk", k)), Vec::new()));
        }
    }
    if let Some(t) = sd.due {
        out.push((format!("t/{}/{tail}", ts(t)), Vec::new()));
    }
    out
}

/// Every logical entry an order owns.
fn order_entries(o: &Key2, entry: &OrderEntry, coupons: bool) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(primary_key(o), codec::encode_order(entry))];
    out.extend(order_index_keys(o, &entry.keys, coupons));
    out
}

/// The secondary index keys of an order (all but its primary entry).
fn order_index_keys(o: &Key2, keys: &OrderKeys, coupons: bool) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let primary = engine::normalize_order_id(&o.1).unwrap_or_default();
    if keys.ids.iter().all(|id| *id == primary)
        && keys.clicks.is_empty()
        && (!coupons || keys.coupon.is_none())
    {
        return out;
    }
    let tail = format!("{}/{}", esc(&o.0), esc(&o.1));
    for id in keys.ids.iter().filter(|id| **id != primary) {
        out.push((format!("{}{tail}", index_prefix("io", id)), Vec::new()));
    }
    for c in &keys.clicks {
        out.push((format!("{}{tail}", index_prefix("ic", c)), Vec::new()));
    }
    if coupons {
        if let Some(k) = &keys.coupon {
            out.push((
                format!("{}{tail}", index_prefix("ik", k)),
                codec::encode_time(&keys.created_at),
            ));
        }
    }
    out
}

fn stored_decision(
    program: &ProgramConfig,
    d: Decision,
    claim: &plugin_api::Conversion,
) -> StoredDecision {
    let due = engine::next_change_at(program, &d, claim);
    StoredDecision {
        decision: d,
        keys: claim_keys(claim),
        due,
    }
}

/// Same judgement: the same outcome, payable flag and basis, for the same
/// order and winner (at any revision). What else a decision records (its
/// reason, inputs, revisions, amounts) may differ: a program edit or a
/// restatement that judges a claim the same keeps when it was first
/// judged so (QA20 F3: any `[[programs]]` edit reset every `decided_at`).
fn same_judgement(a: &Decision, b: &Decision) -> bool {
    fn record(r: &Option<RecordRef>) -> Option<(&str, &str)> {
        r.as_ref().map(|r| (r.source.as_str(), r.id.as_str()))
    }
    !new_outcome(a, b)
        && record(&a.order) == record(&b.order)
        && record(&a.winner) == record(&b.winner)
}

/// Whether `new` differs from `old` in what it decides: outcome, basis or
/// payable flag (not only in the reason, inputs or revisions it records).
fn new_outcome(old: &Decision, new: &Decision) -> bool {
    old.outcome != new.outcome || old.payable != new.payable || old.basis != new.basis
}

/// `new` with the old `decided_at` when the judgement is the same; `None`
/// when nothing differs from `old`.
fn keep_decided_at(mut new: StoredDecision, old: &StoredDecision) -> Option<StoredDecision> {
    if same_judgement(&new.decision, &old.decision) {
        new.decision.decided_at = old.decision.decided_at;
    }
    (new != *old).then_some(new)
}

fn as_claim(s: Stored, source: &str) -> Result<ClaimInput, StoreError> {
    match s.record {
        Record::Conversion(mut c) => Ok(ClaimInput {
            claim: {
                // The store keys records by source; trust the key.
                if c.source != source {
                    c.source = source.to_owned();
                }
                c
            },
            revision: s.revision,
        }),
        other => Err(StoreError::Corrupt {
            tree: "conversions".into(),
            key: format!("{source}/{}", other.key()),
            message: "expected a conversion record".into(),
        }),
    }
}

fn as_order(s: Stored, source: &str) -> Result<OrderInput, StoreError> {
    match s.record {
        Record::Order(mut o) => Ok(OrderInput {
            order: {
                if o.source != source {
                    o.source = source.to_owned();
                }
                o
            },
            revision: s.revision,
        }),
        other => Err(StoreError::Corrupt {
            tree: "orders".into(),
            key: format!("{source}/{}", other.key()),
            message: "expected an order record".into(),
        }),
    }
}

/// Runs one program: incremental when the stored state allows, else full.
pub fn run_program<B: ReconBackend>(
    b: &B,
    program: &ProgramConfig,
    fx: &FxTable,
    now: DateTime<Utc>,
    force_full: bool,
) -> Result<ProgramSummary, ReconcileError> {
    run_program_with(b, program, fx, now, force_full, PASS_CLAIMS)
}

/// [`run_program`], judging at most `pass_claims` claims per pass of a full
/// run.
fn run_program_with<B: ReconBackend>(
    b: &B,
    program: &ProgramConfig,
    fx: &FxTable,
    now: DateTime<Utc>,
    force_full: bool,
    pass_claims: usize,
) -> Result<ProgramSummary, ReconcileError> {
    let hi = b.last_seq()?;
    let state = b
        .kv_get(&state_key(&program.id))?
        .and_then(|v| decode_state(&v));
    let new_state = ProgramState {
        v: FORMAT,
        last_seq: hi,
        program: program.fingerprint(),
        fx: fx.fingerprint(),
        buckets: (D_BUCKETS, X_BUCKETS),
        as_of: b.as_of(),
        judged_at: Some(now),
        payable: None,
    };
    match state {
        Some(s) if !force_full && new_state.as_of.is_none() && is_current(&s, program, fx) => {
            let new_state = ProgramState {
                payable: s.payable,
                ..new_state
            };
            incremental_run(b, program, fx, now, s.last_seq, new_state)
        }
        _ => full_run(b, program, fx, now, new_state, pass_claims),
    }
}

/// Whether a stored state lets the next run be incremental: written in this
/// FORMAT and bucket counts, by a run of the present (not `--now`), with
/// the program's config, the judging rules ([`engine::JUDGE_VERSION`], part
/// of the fingerprint) and the FX table of now. Otherwise the next run is a
/// full one: the stored decisions are not those the present rules make (or
/// cannot be read at all: FORMAT 1).
pub fn is_current(s: &ProgramState, program: &ProgramConfig, fx: &FxTable) -> bool {
    s.as_of.is_none()
        && is_read(s)
        && s.buckets == (D_BUCKETS, X_BUCKETS)
        && s.program == program.fingerprint()
        && s.fx == fx.fingerprint()
}

fn summarize(
    program: &str,
    full: bool,
    decisions: &[Decision],
    (changed, outcomes_changed): (u64, u64),
    state: &ProgramState,
) -> ProgramSummary {
    let mut s = ProgramSummary {
        program: program.to_owned(),
        full,
        claims_judged: decisions.len() as u64,
        decisions_changed: changed,
        outcomes_changed,
        payable_total: state.payable,
        last_seq: state.last_seq,
        ..Default::default()
    };
    for d in decisions {
        *s.by_outcome.entry(d.outcome).or_default() += 1;
        s.payable += u64::from(d.payable);
    }
    s
}

/// A full run's logical entry: its slot, and its key and value as ranges of
/// two arenas (one allocation each instead of two per entry).
struct Entry {
    slot: Slot,
    key: std::ops::Range<usize>,
    val: std::ops::Range<usize>,
}

/// The arenas of a full run's entries.
#[derive(Default)]
struct Arena {
    keys: String,
    vals: Vec<u8>,
    entries: Vec<Entry>,
}

impl Arena {
    /// Adds an entry whose key `write_key` appends and whose value
    /// `write_val` appends.
    fn push(&mut self, write_key: impl FnOnce(&mut String), write_val: impl FnOnce(&mut Vec<u8>)) {
        let k0 = self.keys.len();
        write_key(&mut self.keys);
        let v0 = self.vals.len();
        write_val(&mut self.vals);
        let key = k0..self.keys.len();
        self.entries.push(Entry {
            slot: slot(&self.keys[key.clone()]),
            key,
            val: v0..self.vals.len(),
        });
    }
    fn key(&self, e: &Entry) -> &str {
        &self.keys[e.key.clone()]
    }
    /// Sorts the entries as their tree keys sort: `Slot` orders
    /// D < X < direct, as `P/D/..` < `P/X/..` < `P/t/..` do; within a
    /// bucket, logical keys in order.
    fn sort(&mut self) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_unstable_by(|a, b| (a.slot, self.key(a)).cmp(&(b.slot, self.key(b))));
        self.entries = entries;
    }
    fn val(&self, e: &Entry) -> &[u8] {
        &self.vals[e.val.clone()]
    }
    /// Moves `other`'s entries to the end of this arena.
    fn append(&mut self, other: Arena) {
        let (k0, v0) = (self.keys.len(), self.vals.len());
        self.keys.push_str(&other.keys);
        self.vals.extend_from_slice(&other.vals);
        self.entries
            .extend(other.entries.into_iter().map(|e| Entry {
                slot: e.slot,
                key: e.key.start + k0..e.key.end + k0,
                val: e.val.start + v0..e.val.end + v0,
            }));
    }
}

/// What judging a part of a full run's pass made: the decisions and the
/// claims' index entries (as [`Arena`]s), and the counts the summary takes.
#[derive(Default)]
struct Judged {
    decisions: Arena,
    index: Arena,
    judged: u64,
    payable: u64,
    by_outcome: BTreeMap<Outcome, u64>,
}

/// Judges claims `js` of `plan` and encodes their decisions and index
/// entries.
fn judge_part<C, O>(
    program: &ProgramConfig,
    plan: &engine::Plan<'_, C, O>,
    claims: &C,
    js: &[usize],
    now: DateTime<Utc>,
) -> Judged
where
    C: Inputs<ClaimInput> + ?Sized,
    O: Inputs<OrderInput> + ?Sized,
{
    use std::fmt::Write as _;
    let coupons = program.matching.coupon_matching;
    let mut out = Judged::default();
    for &j in js {
        let c = Inputs::get(claims, j);
        let d = plan.judge_claim(j, &c, now);
        out.judged += 1;
        *out.by_outcome.entry(d.outcome).or_default() += 1;
        out.payable += u64::from(d.payable);
        let sd = stored_decision(program, d, &c.claim);
        let cr = &sd.decision.claim;
        out.decisions.push(
            |ks| {
                let _ = write!(ks, "d/{}/{}", esc(&cr.source), esc(&cr.id));
            },
            |vs| codec::encode_decision_into(vs, &sd),
        );
        for (k, v) in claim_index_keys(&sd, coupons) {
            out.index
                .push(|ks| ks.push_str(&k), |vs| vs.extend_from_slice(&v));
        }
    }
    out
}

fn full_run<B: ReconBackend>(
    b: &B,
    program: &ProgramConfig,
    fx: &FxTable,
    now: DateTime<Utc>,
    new_state: ProgramState,
    pass_claims: usize,
) -> Result<ProgramSummary, ReconcileError> {
    std::thread::scope(|scope| full_run_in(scope, b, program, fx, now, new_state, pass_claims))
}

/// [`full_run`], its writes applied on a thread of `scope` ([`Writer`]).
fn full_run_in<'s, 'e: 's, B: ReconBackend>(
    scope: &'s std::thread::Scope<'s, 'e>,
    b: &'e B,
    program: &ProgramConfig,
    fx: &FxTable,
    now: DateTime<Utc>,
    mut new_state: ProgramState,
    pass_claims: usize,
) -> Result<ProgramSummary, ReconcileError> {
    use std::fmt::Write as _;
    let p = program.id.as_str();
    let started = std::time::Instant::now();
    let pp = program_prefix(p);
    let coupons = program.matching.coupon_matching;
    // Inputs in key order, kept encoded (see `packed`): sources sorted, each
    // scanned in key order.
    let sorted = |sources: &[String]| -> Vec<String> {
        let set: std::collections::BTreeSet<&String> = sources.iter().collect();
        set.into_iter().cloned().collect()
    };
    let count = |kind, sources: &[String]| -> usize {
        sources
            .iter()
            .map(|src| b.count_records(kind, src) as usize)
            .sum()
    };
    // Claims and orders are read on a thread each, gathering what the plan
    // needs of them while each is decoded ([`engine::ClaimFacts`],
    // [`engine::OrderFacts`]).
    let read_claims = || -> Result<_, ReconcileError> {
        let sources = sorted(&program.claims);
        let n = count(RecordKind::Conversion, &sources);
        let mut claims: Packed<ClaimInput> = Packed::with_capacity(n);
        let mut facts = engine::ClaimFacts::with_capacity(n);
        // Each claim's decision bucket, computed while its key is at hand.
        let mut slots: Vec<Slot> = Vec::with_capacity(n);
        let mut dk = String::new();
        for src in &sources {
            for s in b.scan_records(RecordKind::Conversion, src) {
                let c = as_claim(s?, src)?;
                dk.clear();
                dk.push_str("d/");
                dk.push_str(&esc(&c.claim.source));
                dk.push('/');
                dk.push_str(&esc(&c.claim.external_id));
                slots.push(slot(&dk));
                facts.push(program, &c.claim);
                claims.push(&Record::Conversion(c.claim), c.revision);
            }
        }
        Ok((claims, facts, slots))
    };
    let read_orders = || -> Result<_, ReconcileError> {
        let sources = sorted(&program.orders);
        let n = count(RecordKind::Order, &sources);
        let mut orders: Packed<OrderInput> = Packed::with_capacity(n);
        let mut facts = engine::OrderFacts::with_capacity(n, coupons);
        for src in &sources {
            for s in b.scan_records(RecordKind::Order, src) {
                let o = as_order(s?, src)?;
                facts.push(&o.order);
                orders.push(&Record::Order(o.order), o.revision);
            }
        }
        Ok((orders, facts.finish()))
    };
    let (claims, orders) = std::thread::scope(|s| {
        let orders = s.spawn(read_orders);
        let claims = read_claims();
        let orders = orders
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (claims, orders)
    });
    let ((claims, claim_facts, slots), (orders, order_prep)) = (claims?, orders?);
    let read_done = started.elapsed();
    let plan = engine::Plan::with_facts(program, fx, &claims, &orders, claim_facts, order_prep);
    let plan_done = started.elapsed();
    // Claims matched to each order, in claim order: `by_order[at[o]..at[o+1]]`.
    let mut pairs: Vec<(u32, u32)> = (0..plan.len())
        .filter_map(|j| Some((plan.matched_order(j)?, j as u32)))
        .collect();
    pairs.sort_unstable();
    let mut at = vec![0u32; orders.len() + 1];
    for &(o, _) in &pairs {
        at[o as usize + 1] += 1;
    }
    for i in 0..orders.len() {
        at[i + 1] += at[i];
    }
    let by_order: Vec<u32> = pairs.into_iter().map(|(_, j)| j).collect();

    let mut summary = ProgramSummary {
        program: p.to_owned(),
        full: true,
        last_seq: new_state.last_seq,
        ..Default::default()
    };
    // The stored decisions this run is compared with are the buckets with
    // the log laid over them: fold it in (its own batch, which changes no
    // logical entry).
    fold_log(b, &pp)?;
    // Invalidate the state first: a crash part-way leaves no state, so the
    // next run is a full one again.
    let state_k = state_key(p);
    b.kv_apply(vec![(state_k.clone(), None)])?;
    let scan: Box<dyn Iterator<Item = Result<KeyValue, StoreError>> + '_> = Box::new(
        b.kv_scan(pp.as_bytes())
            .filter(|r| r.as_ref().map_or(true, |(k, _)| *k != state_k)),
    );
    let mut old = scan.peekable();
    let mut out = Merge {
        writer: Writer::start(scope, b),
        batch: Vec::new(),
        batch_bytes: 0,
        changed: 0,
        outcomes_changed: 0,
        removed: BTreeMap::new(),
    };
    // Decisions are judged and merged a range of buckets at a time, so only
    // a part of them is ever encoded at once. Index entries (X buckets and
    // direct keys, which sort after every D bucket) wait in `rest`.
    let mut rest = Arena::default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let passes = (claims.len() / pass_claims.max(1)).clamp(1, D_BUCKETS as usize) as u32;
    for pass in 0..passes {
        let lo = D_BUCKETS / passes * pass;
        let hi = if pass + 1 == passes {
            D_BUCKETS
        } else {
            D_BUCKETS / passes * (pass + 1)
        };
        let in_pass: Vec<usize> = (slots.iter().enumerate())
            .filter(|(_, s)| matches!(**s, Slot::D(b) if b >= lo && b < hi))
            .map(|(j, _)| j)
            .collect();
        // Judging is most of a full run: the pass's claims are judged on
        // `threads` threads (the writer applies the last pass's batches
        // meanwhile), their results appended in part order.
        let chunk = in_pass.len().div_ceil(threads).max(1);
        let js: Vec<&[usize]> = in_pass.chunks(chunk).collect();
        let parts = each_on_a_thread(&js, |js| judge_part(program, &plan, &claims, js, now));
        let mut arena = Arena::default();
        for part in parts {
            summary.claims_judged += part.judged;
            summary.payable += part.payable;
            for (o, n) in part.by_outcome {
                *summary.by_outcome.entry(o).or_default() += n;
            }
            arena.append(part.decisions);
            rest.append(part.index);
        }
        arena.sort();
        let upto = slot_key(&pp, Slot::D(hi), "");
        out.merge(&pp, &arena, &mut old, Some(&upto))?;
    }
    // Judging is done: free its tables before the order entries grow.
    drop((plan, slots));
    let judge_done = started.elapsed();
    // Each order's entries (its claims list and index keys), on `threads`
    // threads, appended in order.
    let order_part = |range: std::ops::Range<usize>| -> Arena {
        let mut part = Arena::default();
        for i in range {
            let o = Inputs::get(&orders, i);
            let ok = (o.order.source.clone(), o.order.order_id.clone());
            let okeys = order_keys(&o.order);
            let norm = engine::normalize_order_id(&ok.1).unwrap_or_default();
            let mates = by_order[at[i] as usize..at[i + 1] as usize]
                .iter()
                .map(|&j| claims.key(j as usize));
            part.push(
                |k| {
                    let _ = write!(k, "io/{}/{}/{}", esc(&norm), esc(&ok.0), esc(&ok.1));
                },
                |v| codec::encode_order_into(v, &okeys, mates),
            );
            for (k, v) in order_index_keys(&ok, &okeys, coupons) {
                part.push(|ks| ks.push_str(&k), |vs| vs.extend_from_slice(&v));
            }
        }
        part
    };
    let chunk = orders.len().div_ceil(threads).max(1);
    let ranges: Vec<std::ops::Range<usize>> = (0..orders.len())
        .step_by(chunk)
        .map(|lo| lo..(lo + chunk).min(orders.len()))
        .collect();
    for part in each_on_a_thread(&ranges, |r| order_part(r.clone())) {
        rest.append(part);
    }
    drop((claims, orders, by_order, at));
    let orders_done = started.elapsed();
    rest.sort();
    out.merge(&pp, &rest, &mut old, None)?;
    drop(old);
    // Every claim was judged: its payable ones are the program's.
    new_state.payable = Some(summary.payable);
    out.batch.push((state_k, Some(encode_state(&new_state))));
    out.flush()?;
    out.writer.finish()?;
    // Where a full run's time goes (RUST_LOG=reckon=debug).
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    tracing::debug!(
        program = p,
        judged = summary.claims_judged,
        threads,
        read_ms = ms(read_done),
        plan_ms = ms(plan_done - read_done),
        judge_ms = ms(judge_done - plan_done),
        orders_ms = ms(orders_done - judge_done),
        index_ms = ms(started.elapsed() - orders_done),
        "full run timings (the store flush follows)"
    );
    Ok(ProgramSummary {
        decisions_changed: out.changed,
        outcomes_changed: out.outcomes_changed,
        decisions_removed: out.removed.values().sum(),
        removed_by_source: out.removed,
        payable_total: new_state.payable,
        ..summary
    })
}

/// Claims judged per pass of a full run (a pass encodes its decisions
/// before writing them: this bounds the run's memory for them).
const PASS_CLAIMS: usize = 100_000;

/// A full run's writes to the `recon` tree, in batches of `BATCH_BYTES`.
struct Merge<'s> {
    writer: Writer<'s>,
    batch: Vec<KeyWrite>,
    batch_bytes: usize,
    /// Decisions new or changed.
    changed: u64,
    /// Of `changed`, new or with another outcome, basis or payable flag.
    outcomes_changed: u64,
    /// Stored decisions with no new one, by claims connector.
    removed: BTreeMap<String, u64>,
}

/// The claims connector of a decision's logical key (`d/<source>/<claim>`).
fn key_source(key: &str) -> String {
    key.strip_prefix("d/")
        .and_then(|k| k.split_once('/'))
        .map_or_else(String::new, |(source, _)| unesc(source))
}

type OldEntries<'o> =
    std::iter::Peekable<Box<dyn Iterator<Item = Result<KeyValue, StoreError>> + 'o>>;

/// Batches a full run's writer holds queued: 64 × [`BATCH_BYTES`] = 16 MiB.
/// With one, a full run at 1M × 1.1M waited ~2.8 s of its passes for sled.
const WRITER_QUEUE: usize = 64;

/// Bytes a full run's writer applies between two flushes of the store.
const WRITER_FLUSH_BYTES: usize = 32 << 20;

/// Applies a full run's batches, in order, on a thread of its own, while
/// the run judges and encodes the next ones: sled's inserts were a quarter
/// of a full run's CPU time, all of it on the run's one thread.
struct Writer<'s> {
    tx: Option<std::sync::mpsc::SyncSender<Vec<KeyWrite>>>,
    thread: Option<std::thread::ScopedJoinHandle<'s, Result<(), StoreError>>>,
}

impl<'s> Writer<'s> {
    fn start<'e: 's, B: ReconBackend>(scope: &'s std::thread::Scope<'s, 'e>, b: &'e B) -> Self {
        // Up to `WRITER_QUEUE` batches waiting besides the one being
        // applied (`BATCH_BYTES` each): the next pass is judged while the
        // writer catches up, instead of the run waiting for it.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<KeyWrite>>(WRITER_QUEUE);
        let thread = scope.spawn(move || {
            let mut unflushed = 0usize;
            for batch in rx {
                unflushed += batch
                    .iter()
                    .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
                    .sum::<usize>();
                b.kv_apply(batch)?;
                if unflushed >= WRITER_FLUSH_BYTES {
                    b.flush()?;
                    unflushed = 0;
                }
            }
            Ok(())
        });
        Writer {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queues a batch; a failed earlier batch's error comes back here.
    fn send(&mut self, batch: Vec<KeyWrite>) -> Result<(), StoreError> {
        match &self.tx {
            Some(tx) if tx.send(batch).is_ok() => Ok(()),
            // The thread stopped at an error: that error.
            _ => self.finish(),
        }
    }

    /// Waits until every queued batch is applied.
    fn finish(&mut self) -> Result<(), StoreError> {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        }
    }
}

impl Merge<'_> {
    fn flush(&mut self) -> Result<(), StoreError> {
        self.batch_bytes = 0;
        if !self.batch.is_empty() {
            self.writer.send(std::mem::take(&mut self.batch))?;
        }
        Ok(())
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<(), StoreError> {
        self.batch_bytes += key.len() + value.as_ref().map_or(0, Vec::len);
        self.batch.push((key, value));
        if self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Merges the new physical entries of `arena` (sorted) with what is
    /// stored below `upto` (both in key order): writes what differs,
    /// deletes what is gone (FORMAT-1 keys too).
    fn merge(
        &mut self,
        pp: &str,
        arena: &Arena,
        old: &mut OldEntries<'_>,
        upto: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let entries = &arena.entries;
        let mut next = 0usize;
        let mut new_key: Option<Vec<u8>> = None;
        loop {
            if new_key.is_none() && next < entries.len() {
                let e = &entries[next];
                new_key = Some(slot_key(pp, e.slot, arena.key(e)));
            }
            let old_next = match old.peek() {
                Some(Ok((k, _))) if upto.is_some_and(|u| k.as_slice() >= u) => None,
                other => other,
            };
            let ord = match (&new_key, old_next) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(nk), Some(Ok((ok, _)))) => nk.cmp(ok),
                (_, Some(Err(_))) => {
                    if let Some(Err(e)) = old.next() {
                        return Err(e);
                    }
                    continue;
                }
            };
            let (key, value) = match ord {
                std::cmp::Ordering::Greater => match old.next() {
                    Some(Ok((k, v))) => {
                        if k.starts_with(format!("{pp}D/").as_bytes()) {
                            match codec::decode_bucket(&v) {
                                Ok(entries) => {
                                    for (key, _) in entries {
                                        *self.removed.entry(key_source(&key)).or_default() += 1;
                                    }
                                }
                                Err(_) => {
                                    *self.removed.entry(String::new()).or_default() +=
                                        codec::bucket_len(&v).unwrap_or(0) as u64;
                                }
                            }
                        }
                        (k, None)
                    }
                    _ => continue,
                },
                std::cmp::Ordering::Less | std::cmp::Ordering::Equal => {
                    let Some(key) = new_key.take() else { break };
                    let old_v = match ord {
                        std::cmp::Ordering::Equal => match old.next() {
                            Some(Ok((_, v))) => Some(v),
                            _ => None,
                        },
                        _ => None,
                    };
                    // This key's entries: one direct entry, or a whole bucket.
                    let s = entries[next].slot;
                    let mut end = next + 1;
                    if s != Slot::Direct {
                        while end < entries.len() && entries[end].slot == s {
                            end += 1;
                        }
                    }
                    let group = &entries[next..end];
                    next = end;
                    let value = self.bucket_value(arena, s, group, old_v.as_deref())?;
                    if old_v.as_ref() == Some(&value) {
                        continue;
                    }
                    (key, Some(value))
                }
            };
            self.write(key, value)?;
        }
        Ok(())
    }

    /// The value of one physical key: a direct entry's value, or a bucket
    /// of `group`. A D bucket keeps the stored decisions whose judgement is
    /// the same (with their `decided_at`) and counts the others as changed.
    fn bucket_value(
        &mut self,
        arena: &Arena,
        s: Slot,
        group: &[Entry],
        old_v: Option<&[u8]>,
    ) -> Result<Vec<u8>, StoreError> {
        let fresh = || codec::encode_bucket(group.iter().map(|e| (arena.key(e), arena.val(e))));
        Ok(match s {
            Slot::Direct => arena.val(&group[0]).to_vec(),
            Slot::X(_) => fresh(),
            Slot::D(_) => match old_v.map(codec::decode_bucket) {
                Some(Ok(olds)) => {
                    let v = fresh();
                    if old_v == Some(&v[..]) {
                        v
                    } else {
                        let olds: BTreeMap<String, Vec<u8>> = olds.into_iter().collect();
                        for k in olds
                            .keys()
                            .filter(|k| !group.iter().any(|e| arena.key(e) == k.as_str()))
                        {
                            *self.removed.entry(key_source(k)).or_default() += 1;
                        }
                        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
                        for e in group {
                            let (k, v) = (arena.key(e), arena.val(e));
                            let v = match olds.get(k) {
                                None => {
                                    self.changed += 1;
                                    self.outcomes_changed += 1;
                                    v.to_vec()
                                }
                                Some(ov) if ov[..] == v[..] => v.to_vec(),
                                Some(ov) => {
                                    let o = decode_decision(k, ov)?;
                                    match keep_decided_at(decode_decision(k, v)?, &o) {
                                        None => ov.clone(),
                                        Some(sd) => {
                                            self.changed += 1;
                                            self.outcomes_changed +=
                                                u64::from(new_outcome(&o.decision, &sd.decision));
                                            codec::encode_decision(&sd)
                                        }
                                    }
                                }
                            };
                            out.push((k.to_owned(), v));
                        }
                        codec::encode_bucket(out.iter().map(|(k, v)| (k.as_str(), &v[..])))
                    }
                }
                // No bucket yet, or not one of ours: all new.
                _ => {
                    self.changed += group.len() as u64;
                    self.outcomes_changed += group.len() as u64;
                    fresh()
                }
            },
        })
    }
}

/// Reads done ahead on worker threads for a set of claims: their records,
/// the buckets holding their decisions and their order-id and click-id
/// index entries, and the records of the orders indexed there. The run takes
/// what it needs from here instead of reading one key at a time; a failed
/// read is left for the run's own read to report.
#[derive(Default)]
struct ReadAhead {
    claims: rustc_hash::FxHashMap<Key2, Option<Stored>>,
    orders: rustc_hash::FxHashMap<Key2, Option<Stored>>,
    buckets: rustc_hash::FxHashMap<Vec<u8>, Bucket>,
}

/// What a run holds already, so [`read_ahead`] leaves it out: a bucket by
/// its tree key, an order by its key.
type Loaded<'a> = (&'a dyn Fn(&[u8]) -> bool, &'a dyn Fn(&Key2) -> bool);

/// Fewer claims than this are read in line.
const READ_AHEAD_MIN: usize = 512;

fn read_ahead<B: ReconBackend>(
    b: &B,
    pp: &str,
    log: &Log,
    claims: &[&Key2],
    loaded: Loaded<'_>,
) -> ReadAhead {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if claims.len() < READ_AHEAD_MIN || threads < 2 {
        return ReadAhead::default();
    }
    read_ahead_on(threads, b, pp, log, claims, loaded)
}

/// [`read_ahead`] on `threads` threads.
fn read_ahead_on<B: ReconBackend>(
    threads: usize,
    b: &B,
    pp: &str,
    log: &Log,
    claims: &[&Key2],
    loaded: Loaded<'_>,
) -> ReadAhead {
    let (bucket_loaded, order_loaded) = loaded;
    // Four stages (claim records; their index buckets; the orders indexed
    // there; their decision buckets), each reading its keys in tree order,
    // split into contiguous runs over the threads: keys sharing a sled leaf
    // node are read one after the other, so the node is read once while it
    // is in sled's cache. Reading each claim's chain (record, buckets,
    // orders) in turn read most order nodes about three times at 1M orders,
    // and reading nodes is most of an incremental run.
    let mut sorted: Vec<&Key2> = claims.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let records = in_parallel(threads, &sorted, |c| {
        let rec = b.get_record(RecordKind::Conversion, &c.0, &c.1).ok()?;
        Some(((*c).clone(), rec))
    });
    // The index prefixes each claim is looked up under.
    let prefixes = |rec: &Option<Stored>| -> Vec<String> {
        let Some(Record::Conversion(conv)) = rec.as_ref().map(|s| &s.record) else {
            return Vec::new();
        };
        let keys = claim_keys(conv);
        (keys.oid.iter().map(|o| index_prefix("io", o)))
            .chain(keys.click.iter().map(|c| index_prefix("ic", c)))
            .collect()
    };
    let read_buckets = |keys: BTreeSet<Vec<u8>>| {
        let keys: Vec<Vec<u8>> = keys.into_iter().collect();
        in_parallel(threads, &keys, |pk| {
            Some((pk.clone(), read_bucket(b, log, pk).ok()?))
        })
    };
    let index_keys = (records.iter())
        .flat_map(|(_, rec)| prefixes(rec))
        .map(|prefix| slot_key(pp, prefix_slot(&prefix), &prefix))
        .filter(|pk| !bucket_loaded(pk))
        .collect();
    let mut buckets: rustc_hash::FxHashMap<Vec<u8>, Bucket> =
        read_buckets(index_keys).into_iter().collect();
    let mut order_keys: BTreeSet<Key2> = BTreeSet::new();
    for (_, rec) in &records {
        for prefix in prefixes(rec) {
            let pk = slot_key(pp, prefix_slot(&prefix), &prefix);
            let Some(bk) = buckets.get(&pk) else {
                continue;
            };
            let refs = (bk.with_prefix(&prefix).into_iter())
                .filter_map(|(k, _)| tail_ref(k))
                .filter(|o| !order_loaded(o));
            order_keys.extend(refs);
        }
    }
    let order_keys: Vec<Key2> = order_keys.into_iter().collect();
    let orders = in_parallel(threads, &order_keys, |o| {
        let rec = b.get_record(RecordKind::Order, &o.0, &o.1).ok()?;
        Some((o.clone(), rec))
    });
    // Decision buckets last: the run rewrites most of them, and sled
    // writes a key faster while its node is still cached.
    let decision_keys = (records.iter())
        .map(|(c, _)| {
            let dk = decision_key(c);
            slot_key(pp, slot(&dk), &dk)
        })
        .filter(|pk| !bucket_loaded(pk))
        .collect();
    buckets.extend(read_buckets(decision_keys));
    ReadAhead {
        claims: records.into_iter().collect(),
        orders: orders.into_iter().collect(),
        buckets,
    }
}

/// `f` of each part, each on a scoped thread of its own, in `parts`' order.
/// A panic in `f` is the caller's (unlike [`in_parallel`], whose results
/// are only read ahead).
fn each_on_a_thread<T: Sync, R: Send>(parts: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (parts.iter())
            .map(|part| scope.spawn(move || f(part)))
            .collect();
        (workers.into_iter())
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// `f` over `items` on up to `threads` scoped threads, each taking one
/// contiguous run; results in `items`' order, `None`s left out.
fn in_parallel<T: Sync, R: Send>(
    threads: usize,
    items: &[T],
    f: impl Fn(&T) -> Option<R> + Sync,
) -> Vec<R> {
    if items.is_empty() {
        return Vec::new();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().filter_map(f).collect::<Vec<R>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

/// The program's decision log: the logical entries that incremental runs
/// changed since the buckets were last written. Each run appends one value
/// `P/L/<n>` ([`codec::encode_log`]) in the atomic batch that writes its
/// state, instead of rewriting the ~10k buckets its changes fall in (one
/// sled write instead of 10k random ones); every reader lays the log over
/// the buckets, later values winning. A run that would take it past
/// [`FOLD_ENTRIES`] entries or [`FOLD_VALUES`] values, and every full run,
/// folds it into the buckets in the batch that deletes it ([`fold`]).
#[derive(Debug, Default)]
struct Log {
    /// Its values' tree keys, in order.
    keys: Vec<Vec<u8>>,
    /// The latest value of each logical key the log holds (`None`: deleted).
    entries: BTreeMap<String, Option<Vec<u8>>>,
    /// The logical keys of `entries` by the tree key they belong under (a
    /// bucket's, or a `t/` entry's own).
    by_pk: BTreeMap<Vec<u8>, Vec<String>>,
}

fn log_prefix(pp: &str) -> String {
    format!("{pp}L/")
}

impl Log {
    fn load<B: ReconBackend>(b: &B, pp: &str) -> Result<Log, StoreError> {
        let mut log = Log::default();
        for r in b.kv_scan(log_prefix(pp).as_bytes()) {
            let (k, v) = r?;
            for (lk, lv) in codec::decode_log(&v).map_err(|e| corrupt(&k, e))? {
                log.entries.insert(lk, lv);
            }
            log.keys.push(k);
        }
        for k in log.entries.keys() {
            let pk = slot_key(pp, slot(k), k);
            log.by_pk.entry(pk).or_default().push(k.clone());
        }
        Ok(log)
    }

    /// Lays the entries under tree key `pk` over a bucket's entries.
    fn overlay(&self, pk: &[u8], entries: &mut BTreeMap<String, Vec<u8>>) {
        for k in self.by_pk.get(pk).into_iter().flatten() {
            match self.entries.get(k) {
                Some(Some(v)) => entries.insert(k.clone(), v.clone()),
                _ => entries.remove(k),
            };
        }
    }

    /// The tree key of the next log value.
    fn next_key(&self, pp: &str) -> Vec<u8> {
        let last = (self.keys.last())
            .and_then(|k| k.len().checked_sub(8).map(|at| &k[at..]))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes);
        let mut k = log_prefix(pp).into_bytes();
        k.extend_from_slice(&last.map_or(0, |n| n + 1).to_be_bytes());
        k
    }
}

/// The entries of the bucket stored at tree key `pk` (none if not stored).
fn bucket_entries(
    pk: &[u8],
    stored: Option<&[u8]>,
) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
    Ok(match stored {
        Some(v) => codec::decode_bucket(v)
            .map_err(|e| corrupt(pk, e))?
            .into_iter()
            .collect(),
        None => BTreeMap::new(),
    })
}

/// The bucket at tree key `pk` with the log laid over it.
fn read_bucket<B: ReconBackend>(b: &B, log: &Log, pk: &[u8]) -> Result<Bucket, StoreError> {
    Bucket::new(pk, b.kv_get(pk)?, log)
}

/// What [`each_in_buckets`] calls with each (logical key, value).
type EachEntry<'a> = dyn FnMut(&str, &[u8]) -> Result<(), StoreError> + 'a;

/// Calls `each` with every logical entry of the buckets under `ns` (`D/`
/// or `X/`) with the log laid over them, bucket by bucket in tree order
/// (within a bucket, in key order).
fn each_in_buckets<B: ReconBackend>(
    b: &B,
    pp: &str,
    ns: &str,
    log: &Log,
    mut each: impl FnMut(&str, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let prefix = format!("{pp}{ns}").into_bytes();
    let mut pending = (log.by_pk.range(prefix.clone()..))
        .map(|(pk, _)| pk)
        .take_while(|pk| pk.starts_with(&prefix))
        .peekable();
    let overlaid =
        |pk: &[u8], stored: Option<&[u8]>, each: &mut EachEntry<'_>| -> Result<(), StoreError> {
            let mut entries = bucket_entries(pk, stored)?;
            log.overlay(pk, &mut entries);
            entries.iter().try_for_each(|(k, v)| each(k, v))
        };
    for r in b.kv_scan(&prefix) {
        let (k, v) = r?;
        while let Some(pk) = pending.next_if(|pk| pk.as_slice() < k.as_slice()) {
            overlaid(pk, None, &mut each)?;
        }
        if pending
            .next_if(|pk| pk.as_slice() == k.as_slice())
            .is_some()
        {
            overlaid(&k, Some(&v), &mut each)?;
            continue;
        }
        for (lk, lv) in codec::decode_bucket(&v).map_err(|e| corrupt(&k, e))? {
            each(&lk, &lv)?;
        }
    }
    for pk in pending {
        overlaid(pk, None, &mut each)?;
    }
    Ok(())
}

/// The writes that fold `log` and `changes` (later) into the buckets and
/// delete the log's values: one batch, so a crash leaves either the log or
/// the folded buckets, which read the same. `loaded` are buckets a run
/// holds already, with both laid over them (their entries are final).
fn fold<B: ReconBackend>(
    b: &B,
    pp: &str,
    log: Log,
    changes: BTreeMap<String, Option<Vec<u8>>>,
    mut loaded: BTreeMap<Vec<u8>, Bucket>,
) -> Result<Vec<KeyWrite>, StoreError> {
    let mut all = log.entries;
    all.extend(changes);
    let mut by_pk: BTreeMap<Vec<u8>, codec::LogEntries> = BTreeMap::new();
    for (k, v) in all {
        by_pk
            .entry(slot_key(pp, slot(&k), &k))
            .or_default()
            .push((k, v));
    }
    // `t/` entries have tree keys of their own.
    let direct = format!("{pp}t/");
    let direct = direct.as_bytes();
    // The buckets not loaded, read on worker threads in tree order.
    let unread: Vec<&Vec<u8>> = (by_pk.keys())
        .filter(|pk| !loaded.contains_key(*pk) && !pk.starts_with(direct))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let read = in_parallel(threads, &unread, |pk| Some(((*pk).clone(), b.kv_get(pk))));
    let mut stored: BTreeMap<Vec<u8>, Option<sled::IVec>> = BTreeMap::new();
    for (pk, r) in read {
        stored.insert(pk, r?);
    }
    let mut batch = Vec::new();
    for (pk, group) in by_pk {
        if pk.starts_with(direct) {
            for (_, v) in group {
                batch.push((pk.clone(), v));
            }
            continue;
        }
        let bk = match loaded.remove(&pk) {
            Some(bk) => bk,
            None => {
                let stored = stored.remove(&pk).flatten();
                let mut bk = Bucket::new(&pk, stored, &Log::default())?;
                bk.edits.extend(group);
                bk
            }
        };
        if let Some(value) = bk.new_value() {
            batch.push((pk, value));
        }
    }
    batch.extend(log.keys.into_iter().map(|k| (k, None)));
    Ok(batch)
}

/// Folds a program's decision log into its buckets, if it has one (a full
/// run does this first: it compares its decisions with the stored ones).
fn fold_log<B: ReconBackend>(b: &B, pp: &str) -> Result<(), StoreError> {
    let log = Log::load(b, pp)?;
    if log.keys.is_empty() {
        return Ok(());
    }
    b.kv_apply(fold(b, pp, log, BTreeMap::new(), BTreeMap::new())?)
}

/// A bucket as a run holds it: its stored bytes, read where they lie, and
/// the logical entries that differ from them: the log's, laid over them
/// when it is read, then the run's edits (`None`: deleted). A lookup
/// decodes only what it returns: a 10k-claim run reads ~24k index buckets
/// of ~16 entries each, and decoding each into a map of its own made ~120
/// MB of fresh memory a run, whose page faults were about half of a warm
/// run (ARCHITECTURE.md, "Goal (c)").
struct Bucket {
    stored: Option<sled::IVec>,
    edits: BTreeMap<String, Option<Vec<u8>>>,
}

impl Bucket {
    /// The bucket stored at tree key `pk` (its bytes checked here, once),
    /// with the entries `log` holds under `pk` laid over it.
    fn new(pk: &[u8], stored: Option<sled::IVec>, log: &Log) -> Result<Bucket, StoreError> {
        if let Some(v) = &stored {
            for entry in codec::bucket_entries(v).map_err(|e| corrupt(pk, e))? {
                entry.map_err(|e| corrupt(pk, e))?;
            }
        }
        let edits = (log.by_pk.get(pk).into_iter().flatten())
            .map(|k| (k.clone(), log.entries.get(k).cloned().flatten()))
            .collect();
        Ok(Bucket { stored, edits })
    }

    /// The stored entries, in key order (checked by [`Bucket::new`]).
    fn stored(&self) -> impl Iterator<Item = (&str, &[u8])> {
        (self.stored.as_deref())
            .and_then(|v| codec::bucket_entries(v).ok())
            .into_iter()
            .flatten()
            .map_while(Result::ok)
    }

    /// The value of logical key `key`.
    fn get(&self, key: &str) -> Option<&[u8]> {
        if let Some(v) = self.edits.get(key) {
            return v.as_deref();
        }
        (self.stored())
            .take_while(|(k, _)| *k <= key)
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The entries whose keys start with `prefix`, in key order.
    fn with_prefix<'b>(&'b self, prefix: &str) -> Vec<(&'b str, &'b [u8])> {
        let stored = (self.stored())
            .skip_while(|(k, _)| *k < prefix)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| !self.edits.contains_key(*k));
        let from = (
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        );
        let edited = (self.edits.range::<str, _>(from))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?)));
        let mut all: Vec<(&str, &[u8])> = stored.chain(edited).collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all
    }

    /// Puts (or, with `None`, deletes) `key`; returns its value before.
    fn put(&mut self, key: String, value: Option<Vec<u8>>) -> Option<Vec<u8>> {
        let before = self.get(&key).map(<[u8]>::to_vec);
        self.edits.insert(key, value);
        before
    }

    /// The bucket's value to write (`None` inside: delete it), or `None`
    /// when it is the stored one.
    fn new_value(&self) -> Option<Option<Vec<u8>>> {
        if self.edits.is_empty() {
            return None;
        }
        let mut all: BTreeMap<&str, &[u8]> = self.stored().collect();
        for (k, v) in &self.edits {
            match v {
                Some(v) => all.insert(k, v),
                None => all.remove(k.as_str()),
            };
        }
        let value = (!all.is_empty()).then(|| codec::encode_bucket(all.into_iter()));
        (value.as_deref() != self.stored.as_deref()).then_some(value)
    }
}

/// The program's logical entries over the tree and the log, for an
/// incremental run: each bucket is read once and edited in memory; what
/// changed goes into one log value at the end (or folds the log).
struct Layer<'a, B: ReconBackend> {
    b: &'a B,
    pp: String,
    log: Log,
    buckets: RefCell<BTreeMap<Vec<u8>, Bucket>>,
    /// Each bucket entry put, with its value before the run.
    orig: BTreeMap<String, Option<Vec<u8>>>,
    /// The `t/` entries put (their own tree keys), with their new value.
    direct: BTreeMap<String, Option<Vec<u8>>>,
}

impl<'a, B: ReconBackend> Layer<'a, B> {
    fn new(b: &'a B, p: &str, log: Log) -> Self {
        Layer {
            b,
            pp: program_prefix(p),
            log,
            buckets: RefCell::default(),
            orig: BTreeMap::new(),
            direct: BTreeMap::new(),
        }
    }

    /// Runs `f` on the (loaded) bucket at tree key `pk`.
    fn with_bucket<T>(
        &self,
        pk: Vec<u8>,
        f: impl FnOnce(&mut Bucket) -> T,
    ) -> Result<T, StoreError> {
        let mut buckets = self.buckets.borrow_mut();
        if let Some(bk) = buckets.get_mut(&pk) {
            return Ok(f(bk));
        }
        let bk = read_bucket(self.b, &self.log, &pk)?;
        Ok(f(buckets.entry(pk).or_insert(bk)))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let s = slot(key);
        self.with_bucket(slot_key(&self.pp, s, key), |bk| {
            bk.get(key).map(<[u8]>::to_vec)
        })
    }

    /// Adds buckets read ahead (those not loaded yet).
    fn seed(&self, buckets: rustc_hash::FxHashMap<Vec<u8>, Bucket>) {
        let mut mine = self.buckets.borrow_mut();
        for (pk, bk) in buckets {
            mine.entry(pk).or_insert(bk);
        }
    }

    /// Entries under `prefix` (`<kind>/<value>/`: all in one bucket).
    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let s = prefix_slot(prefix);
        self.with_bucket(slot_key(&self.pp, s, prefix), |bk| {
            (bk.with_prefix(prefix).into_iter())
                .map(|(k, v)| (k.to_owned(), v.to_vec()))
                .collect()
        })
    }

    fn put(&mut self, key: String, value: Option<Vec<u8>>) -> Result<(), StoreError> {
        let s = slot(&key);
        if s == Slot::Direct {
            self.direct.insert(key, value);
            return Ok(());
        }
        let pk = slot_key(&self.pp, s, &key);
        let before = self.with_bucket(pk, |bk| bk.put(key.clone(), value))?;
        self.orig.entry(key).or_insert(before);
        Ok(())
    }

    /// Replaces the entries `old` with `new`: deletes keys not in `new`,
    /// puts those whose value is new. `old` must be what is stored (the
    /// entries of a stored decision or order entry): `t/` keys are not
    /// read back.
    fn replace(
        &mut self,
        old: Vec<(String, Vec<u8>)>,
        new: Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let new_keys: BTreeSet<&String> = new.iter().map(|(k, _)| k).collect();
        let gone: Vec<String> = (old.iter())
            .map(|(k, _)| k)
            .filter(|k| !new_keys.contains(k))
            .cloned()
            .collect();
        let old: BTreeMap<String, Vec<u8>> = old.into_iter().collect();
        for k in gone {
            self.put(k, None)?;
        }
        for (k, v) in new {
            if old.get(&k) != Some(&v) {
                self.put(k, Some(v))?;
            }
        }
        Ok(())
    }

    /// The tree writes of the run's changes: one log value, or (when the
    /// log would pass [`FOLD_ENTRIES`]) the folded buckets; none when
    /// nothing changed. Also how many logical entries changed.
    fn into_batch(self) -> Result<(Vec<KeyWrite>, usize), StoreError> {
        let buckets = self.buckets.into_inner();
        let mut changes: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        for (k, before) in self.orig {
            let pk = slot_key(&self.pp, slot(&k), &k);
            let after = (buckets.get(&pk))
                .and_then(|bk| bk.get(&k))
                .map(<[u8]>::to_vec);
            if after != before {
                changes.insert(k, after);
            }
        }
        changes.extend(self.direct);
        let n = changes.len();
        if n == 0 {
            return Ok((Vec::new(), 0));
        }
        let entries = self.log.entries.len() + n;
        if entries < self.b.fold_entries() && self.log.keys.len() + 1 < FOLD_VALUES {
            let value = codec::encode_log(changes.iter().map(|(k, v)| (k.as_str(), v.as_deref())));
            drop_later(buckets);
            return Ok((vec![(self.log.next_key(&self.pp), Some(value))], n));
        }
        Ok((fold(self.b, &self.pp, self.log, changes, buckets)?, n))
    }
}

/// Frees `v` on a thread of its own: the maps of decoded buckets and
/// records an incremental run holds took ~30 ms of a 10k-claim run to free
/// (bench (c)), after its result was made. Where no thread can be started,
/// here.
fn drop_later<T: Send + 'static>(v: T) {
    let _ = std::thread::Builder::new()
        .name("reckon-free".into())
        .spawn(move || drop(v));
}

/// What an incremental run changes for one claim whose decision differs
/// from the stored one: made on the judging threads, applied to the layer
/// after, in claim order.
struct Change {
    claim: Key2,
    /// The new decision, encoded.
    value: Vec<u8>,
    /// The stored decision's index entries, and the new one's.
    old_index: Vec<(String, Vec<u8>)>,
    new_index: Vec<(String, Vec<u8>)>,
    was_payable: bool,
    /// Outcome, basis or payable flag differ (or there was no decision).
    new_outcome: bool,
    old_order: Option<Key2>,
    new_order: Option<Key2>,
}

impl Change {
    fn of(claim: Key2, sd: StoredDecision, old: Option<&StoredDecision>, coupons: bool) -> Self {
        let order = |d: &Decision| (d.order.as_ref()).map(|r| (r.source.clone(), r.id.clone()));
        Change {
            claim,
            value: codec::encode_decision(&sd),
            old_index: old
                .map(|o| claim_index_keys(o, coupons))
                .unwrap_or_default(),
            new_index: claim_index_keys(&sd, coupons),
            was_payable: old.is_some_and(|o| o.decision.payable),
            new_outcome: old.is_none_or(|o| new_outcome(&o.decision, &sd.decision)),
            old_order: old.and_then(|o| order(&o.decision)),
            new_order: order(&sd.decision),
        }
    }
}

fn incremental_run<B: ReconBackend>(
    b: &B,
    program: &ProgramConfig,
    fx: &FxTable,
    now: DateTime<Utc>,
    after: u64,
    mut new_state: ProgramState,
) -> Result<ProgramSummary, ReconcileError> {
    let p = program.id.as_str();
    let started = std::time::Instant::now();
    let coupons = program.matching.coupon_matching;
    let hi = new_state.last_seq;
    let mut touched_claims: BTreeSet<Key2> = BTreeSet::new();
    let mut touched_orders: BTreeSet<Key2> = BTreeSet::new();
    for ch in b.changes_since(after) {
        let ch = ch?;
        if ch.seq > hi {
            break;
        }
        match ch.kind {
            RecordKind::Conversion if program.claims.contains(&ch.source) => {
                touched_claims.insert((ch.source, ch.key));
            }
            RecordKind::Order if program.orders.contains(&ch.source) => {
                touched_orders.insert((ch.source, ch.key));
            }
            _ => {}
        }
    }
    // Decisions due to change with time alone: `t/` keys in the tree, less
    // those the log deletes, and those the log puts.
    let pp = program_prefix(p);
    let log = Log::load(b, &pp)?;
    let tprefix = format!("{pp}t/");
    let now_ts = ts(now);
    let is_due = |logical: &str| {
        let t = logical["t/".len()..].split('/').next().unwrap_or("");
        t <= now_ts.as_str()
    };
    for r in b.kv_scan(tprefix.as_bytes()) {
        let (k, _) = r?;
        let k = String::from_utf8_lossy(&k).into_owned();
        let logical = &k[pp.len()..];
        if !is_due(logical) {
            break;
        }
        if log.entries.contains_key(logical) {
            continue;
        }
        if let Some(c) = tail_ref(&k) {
            touched_claims.insert(c);
        }
    }
    let in_log = (log.entries.range("t/".to_owned()..))
        .take_while(|(k, _)| k.starts_with("t/") && is_due(k));
    for (k, v) in in_log {
        if let (Some(_), Some(c)) = (v, tail_ref(k)) {
            touched_claims.insert(c);
        }
    }
    if touched_claims.is_empty() && touched_orders.is_empty() {
        let new = encode_state(&new_state);
        if b.kv_get(&state_key(p))?.as_deref() != Some(&new[..]) {
            b.kv_apply(vec![(state_key(p), Some(new))])?;
        }
        return Ok(summarize(p, false, &[], (0, 0), &new_state));
    }

    let mut ov = Layer::new(b, p, log);
    let mut affected: BTreeSet<Key2> = touched_claims;
    let add_refs =
        |ov: &Layer<B>, prefix: &str, set: &mut BTreeSet<Key2>| -> Result<(), StoreError> {
            for (k, _) in ov.scan(prefix)? {
                if let Some(c) = tail_ref(&k) {
                    set.insert(c);
                }
            }
            Ok(())
        };
    // The claims list of an order, as indexed (none for an unknown order).
    let entry_of = |ov: &Layer<B>, o: &Key2| -> Result<Option<OrderEntry>, StoreError> {
        let k = primary_key(o);
        match ov.get(&k)? {
            Some(v) if !v.is_empty() => decode_order(&k, &v).map(Some),
            _ => Ok(None),
        }
    };
    // Claims matched to any order indexed under `prefix` (io/ic entries).
    let add_holders =
        |ov: &Layer<B>, prefix: &str, set: &mut BTreeSet<Key2>| -> Result<(), StoreError> {
            for (k, _) in ov.scan(prefix)? {
                if let Some(o) = tail_ref(&k) {
                    if let Some(e) = entry_of(ov, &o)? {
                        set.extend(e.claims);
                    }
                }
            }
            Ok(())
        };
    // Re-index touched orders; collect the claims they may concern.
    for o in &touched_orders {
        let old = entry_of(&ov, o)?;
        let new_keys = match b.get_record(RecordKind::Order, &o.0, &o.1)? {
            Some(s) => Some(order_keys(&as_order(s, &o.0)?.order)),
            None => None,
        };
        for keys in old.iter().map(|e| &e.keys).chain(new_keys.iter()) {
            for id in &keys.ids {
                add_refs(&ov, &index_prefix("qo", id), &mut affected)?;
                add_holders(&ov, &index_prefix("io", id), &mut affected)?;
            }
            for c in &keys.clicks {
                add_refs(&ov, &index_prefix("qc", c), &mut affected)?;
                add_holders(&ov, &index_prefix("ic", c), &mut affected)?;
            }
            if coupons {
                if let Some(k) = &keys.coupon {
                    add_refs(&ov, &index_prefix("qk", k), &mut affected)?;
                }
            }
        }
        let claims = old.as_ref().map(|e| e.claims.clone()).unwrap_or_default();
        affected.extend(claims.iter().cloned());
        let old_entries = old
            .map(|e| order_entries(o, &e, coupons))
            .unwrap_or_default();
        let new_entries = new_keys
            .map(|keys| order_entries(o, &OrderEntry { keys, claims }, coupons))
            .unwrap_or_default();
        ov.replace(old_entries, new_entries)?;
    }

    // Load the affected claims, their old decisions and candidate orders.
    let closure_done = started.elapsed();
    let mut claims: BTreeMap<Key2, ClaimInput> = BTreeMap::new();
    // Stored decisions as stored: decoded on the judging threads.
    let mut olds: BTreeMap<Key2, Option<Vec<u8>>> = BTreeMap::new();
    let mut orders: BTreeMap<Key2, OrderInput> = BTreeMap::new();
    let window = Duration::hours(i64::from(program.matching.fuzzy_window_hours));
    let ra = RefCell::new(ReadAhead::default());
    // Reads ahead for `cs`, leaving out the buckets `ov` holds and the
    // orders `known` says are loaded.
    let ahead = |ov: &Layer<B>, cs: &[&Key2], known: &dyn Fn(&Key2) -> bool| {
        let held = |pk: &[u8]| ov.buckets.borrow().contains_key(pk);
        let mut r = read_ahead(b, &pp, &ov.log, cs, (&held, known));
        ov.seed(std::mem::take(&mut r.buckets));
        *ra.borrow_mut() = r;
    };
    let load_claim = |ov: &Layer<B>,
                      c: &Key2,
                      claims: &mut BTreeMap<Key2, ClaimInput>,
                      olds: &mut BTreeMap<Key2, Option<Vec<u8>>>,
                      orders: &mut BTreeMap<Key2, OrderInput>|
     -> Result<(), ReconcileError> {
        if claims.contains_key(c) {
            return Ok(());
        }
        let ahead = ra.borrow_mut().claims.remove(c);
        let rec = match ahead {
            Some(r) => r,
            None => b.get_record(RecordKind::Conversion, &c.0, &c.1)?,
        };
        let Some(s) = rec else {
            return Ok(());
        };
        let ci = as_claim(s, &c.0)?;
        let keys = claim_keys(&ci.claim);
        let old = ov.get(&decision_key(c))?;
        // Candidate orders under every key the claim could match by.
        let mut cands: BTreeSet<Key2> = BTreeSet::new();
        if let Some(oid) = &keys.oid {
            add_refs(ov, &index_prefix("io", oid), &mut cands)?;
        }
        if let Some(click) = &keys.click {
            add_refs(ov, &index_prefix("ic", click), &mut cands)?;
        }
        if let Some(k) = keys.coupon.as_ref().filter(|_| coupons) {
            for (key, v) in ov.scan(&index_prefix("ik", k))? {
                let created = codec::decode_time(&v).map_err(|e| corrupt(key.as_bytes(), e))?;
                if (created - ci.claim.occurred_at).abs() <= window {
                    if let Some(r) = tail_ref(&key) {
                        cands.insert(r);
                    }
                }
            }
        }
        for o in cands {
            if orders.contains_key(&o) {
                continue;
            }
            let ahead = ra.borrow_mut().orders.remove(&o);
            let rec = match ahead {
                Some(r) => r,
                None => b.get_record(RecordKind::Order, &o.0, &o.1)?,
            };
            if let Some(s) = rec {
                orders.insert(o.clone(), as_order(s, &o.0)?);
            }
        }
        claims.insert(c.clone(), ci);
        olds.insert(c.clone(), old);
        Ok(())
    };
    ahead(&ov, &affected.iter().collect::<Vec<_>>(), &|_| false);
    for c in &affected {
        load_claim(&ov, c, &mut claims, &mut olds, &mut orders)?;
    }

    // The orders the affected claims match now, and matched before.
    let mut contest_orders: BTreeSet<Key2> = BTreeSet::new();
    {
        let mut sorted: Vec<&OrderInput> = orders.values().collect();
        sorted.sort_by(|a, b| {
            (&a.order.source, &a.order.order_id).cmp(&(&b.order.source, &b.order.order_id))
        });
        let refs: Vec<&plugin_api::Order> = sorted.iter().map(|o| &o.order).collect();
        let index = engine::OrderIndex::build(&refs, coupons);
        let mut buf = String::new();
        for c in claims.values() {
            if let Some((i, _)) =
                engine::match_claim(program, fx, &c.claim, &refs, &index, &mut buf)
            {
                let o = refs[i as usize];
                contest_orders.insert((o.source.clone(), o.order_id.clone()));
            }
        }
    }
    for (c, old) in &olds {
        let Some(old) = old else { continue };
        let order =
            codec::decision_order(old).map_err(|e| corrupt(decision_key(c).as_bytes(), e))?;
        if let Some(o) = order {
            contest_orders.insert((o.source, o.id));
        }
    }
    // Every claim sharing one of those orders joins the judgement.
    let mut mates: BTreeSet<Key2> = BTreeSet::new();
    for o in &contest_orders {
        if let Some(e) = entry_of(&ov, o)? {
            mates.extend(e.claims);
        }
    }
    let new_mates: Vec<&Key2> = mates.iter().filter(|c| !claims.contains_key(*c)).collect();
    ahead(&ov, &new_mates, &|o| orders.contains_key(o));
    for c in &mates {
        load_claim(&ov, c, &mut claims, &mut olds, &mut orders)?;
    }

    let read_done = started.elapsed();
    let claim_list: Vec<ClaimInput> = claims.into_values().collect();
    let order_list: Vec<OrderInput> = orders.into_values().collect();
    // Judged, and compared with the stored decisions, on up to `threads`
    // threads: each claim's new decision and the entries it changes are its
    // own (the plan and the stored decisions are only read); the layer is
    // edited after, in claim order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let threads = if claim_list.len() < READ_AHEAD_MIN {
        1
    } else {
        threads
    };
    let stored = &olds;
    let judged = engine::decide_each(
        program,
        &claim_list,
        &order_list,
        fx,
        now,
        threads,
        |ci, d| {
            let c = (d.claim.source.clone(), d.claim.id.clone());
            debug_assert_eq!(c, (ci.claim.source.clone(), ci.claim.external_id.clone()));
            let (outcome, payable) = (d.outcome, d.payable);
            let old = match stored.get(&c).and_then(Option::as_ref) {
                Some(v) => Some(decode_decision(&decision_key(&c), v)?),
                None => None,
            };
            let sd = stored_decision(program, d, &ci.claim);
            let sd = match &old {
                Some(o) => keep_decided_at(sd, o),
                None => Some(sd),
            };
            let change = sd.map(|sd| Change::of(c, sd, old.as_ref(), coupons));
            Ok::<_, StoreError>((outcome, payable, change))
        },
    );
    let judge_done = started.elapsed();
    let mut summary = ProgramSummary {
        program: p.to_owned(),
        full: false,
        claims_judged: judged.len() as u64,
        last_seq: new_state.last_seq,
        ..Default::default()
    };
    let mut changed = 0u64;
    let mut outcomes_changed = 0u64;
    // Payable decisions gained and lost, to keep the program's count.
    let (mut gained, mut lost) = (0u64, 0u64);
    let mut moves: Vec<(Key2, Option<Key2>, Option<Key2>)> = Vec::new();
    for judged in judged {
        let (outcome, payable, change) = judged?;
        *summary.by_outcome.entry(outcome).or_default() += 1;
        summary.payable += u64::from(payable);
        let Some(ch) = change else { continue };
        changed += 1;
        outcomes_changed += u64::from(ch.new_outcome);
        gained += u64::from(payable && !ch.was_payable);
        lost += u64::from(ch.was_payable && !payable);
        if ch.old_order != ch.new_order {
            moves.push((ch.claim.clone(), ch.old_order, ch.new_order));
        }
        // The decision differs from the stored one (`keep_decided_at`):
        // put as it is; its index entries replace the old ones'.
        ov.put(decision_key(&ch.claim), Some(ch.value))?;
        ov.replace(ch.old_index, ch.new_index)?;
    }
    let compare_done = started.elapsed();
    // Keep each order's claims list in step with the decisions.
    let mut lists: BTreeMap<Key2, Option<OrderEntry>> = BTreeMap::new();
    for (c, from, to) in moves {
        for (o, add) in [(from, false), (to, true)] {
            let Some(o) = o else { continue };
            if !lists.contains_key(&o) {
                let e = entry_of(&ov, &o)?;
                lists.insert(o.clone(), e);
            }
            if let Some(Some(e)) = lists.get_mut(&o) {
                match (e.claims.binary_search(&c), add) {
                    (Err(i), true) => e.claims.insert(i, c.clone()),
                    (Ok(i), false) => {
                        e.claims.remove(i);
                    }
                    _ => {}
                }
            }
        }
    }
    for (o, e) in lists {
        if let Some(e) = e {
            ov.put(primary_key(&o), Some(codec::encode_order(&e)))?;
        }
    }
    new_state.payable = new_state.payable.map(|n| (n + gained).saturating_sub(lost));
    // Write what changed (one log value, or the folded log), atomically
    // with the state.
    let (mut batch, entries_changed) = ov.into_batch()?;
    let encode_done = started.elapsed();
    let keys_written = batch.len();
    batch.push((state_key(p), Some(encode_state(&new_state))));
    b.kv_apply(batch)?;
    // Where an incremental run's time goes (RUST_LOG=reckon=debug).
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    tracing::debug!(
        program = p,
        touched_orders = touched_orders.len(),
        judged = summary.claims_judged,
        entries_changed,
        keys_written,
        closure_ms = ms(closure_done),
        read_ms = ms(read_done - closure_done),
        judge_ms = ms(judge_done - read_done),
        compare_ms = ms(compare_done - judge_done),
        encode_ms = ms(encode_done - compare_done),
        write_ms = ms(started.elapsed() - encode_done),
        "incremental run timings (the store flush follows)"
    );
    summary.decisions_changed = changed;
    summary.outcomes_changed = outcomes_changed;
    summary.payable_total = new_state.payable;
    drop_later((claim_list, order_list, olds));
    Ok(summary)
}

/// Every logical entry of a program (decisions and indexes, not the
/// state), decoded from its buckets: the layout-independent view tests
/// compare.
pub fn logical_entries<B: ReconBackend>(
    b: &B,
    program: &str,
) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
    let pp = program_prefix(program);
    let log = Log::load(b, &pp)?;
    let mut out = BTreeMap::new();
    for ns in ["D/", "X/"] {
        each_in_buckets(b, &pp, ns, &log, |k, v| {
            out.insert(k.to_owned(), v.to_vec());
            Ok(())
        })?;
    }
    for r in b.kv_scan(format!("{pp}t/").as_bytes()) {
        let (k, v) = r?;
        out.insert(String::from_utf8_lossy(&k[pp.len()..]).into_owned(), v);
    }
    for (k, v) in log.entries.range("t/".to_owned()..) {
        if !k.starts_with("t/") {
            break;
        }
        match v {
            Some(v) => out.insert(k.clone(), v.clone()),
            None => out.remove(k),
        };
    }
    Ok(out)
}

/// The stored decision of one claim (`source`/`id`), if any: its one
/// decision bucket read, the log laid over it.
pub fn load_stored_decision<B: ReconBackend>(
    b: &B,
    program: &str,
    source: &str,
    id: &str,
) -> Result<Option<Decision>, StoreError> {
    if whole_run_state(b, program)?.is_none() {
        return Ok(None);
    }
    let pp = program_prefix(program);
    let log = Log::load(b, &pp)?;
    let dk = decision_key(&(source.to_owned(), id.to_owned()));
    let bucket = read_bucket(b, &log, &slot_key(&pp, slot(&dk), &dk))?;
    match bucket.get(&dk) {
        Some(v) => Ok(Some(decode_decision(&dk, v)?.decision)),
        None => Ok(None),
    }
}

/// Decodes every stored decision of a program, in claim key order.
pub fn load_stored_decisions<B: ReconBackend>(
    b: &B,
    program: &str,
) -> Result<Vec<Decision>, StoreError> {
    // Counted first, so the result is allocated once: growing it by doubling
    // would briefly hold two copies of a million decisions.
    // (The log's puts may replace stored decisions: at most that many.)
    let mut n = 0usize;
    for r in b.kv_scan(decision_prefix(program).as_bytes()) {
        let (k, v) = r?;
        n += codec::bucket_len(&v).map_err(|e| corrupt(&k, e))?;
    }
    for r in b.kv_scan(log_prefix(&program_prefix(program)).as_bytes()) {
        let (k, v) = r?;
        n += (codec::decode_log(&v).map_err(|e| corrupt(&k, e))?.iter())
            .filter(|(k, v)| k.starts_with("d/") && v.is_some())
            .count();
    }
    load_into(
        b,
        program,
        Vec::with_capacity(n),
        |sd| Some(sd.decision),
        |d| d,
    )
}

/// [`load_stored_decisions`], keeping only what `keep` accepts: decisions
/// are decoded one at a time, so memory follows what is kept.
pub fn load_stored_decisions_where<B: ReconBackend>(
    b: &B,
    program: &str,
    mut keep: impl FnMut(&Decision) -> bool,
) -> Result<Vec<Decision>, StoreError> {
    let take = |sd: StoredDecision| keep(&sd.decision).then_some(sd.decision);
    load_into(b, program, Vec::new(), take, |d| d)
}

/// A decision and when it changes with time alone ([`StoredDecision::due`]).
pub type DecisionDue = (Decision, Option<DateTime<Utc>>);

/// [`load_stored_decisions_where`], each decision with the instant it
/// changes with time alone ([`StoredDecision::due`]), in claim key order.
pub fn load_stored_decisions_due_where<B: ReconBackend>(
    b: &B,
    program: &str,
    mut keep: impl FnMut(&Decision) -> bool,
) -> Result<Vec<DecisionDue>, StoreError> {
    let take = |sd: StoredDecision| keep(&sd.decision).then_some((sd.decision, sd.due));
    load_into(b, program, Vec::new(), take, |(d, _)| d)
}

/// The program's state as the last run left it, if that run stored
/// decisions this version reads: none before the first run, while a full
/// run is under way or was cut short, or when the run was one of a version
/// that wrote another FORMAT (a FORMAT-1 tree, from before the upgrade to
/// FORMAT 2: its decisions are not read, so to every reader the program
/// has not been reconciled until its next, full, run).
pub fn stored_state<B: ReconBackend>(
    b: &B,
    program: &str,
) -> Result<Option<ProgramState>, StoreError> {
    Ok(b.kv_get(&state_key(program))?
        .and_then(|v| decode_state(&v))
        .filter(is_read))
}

/// The earliest instant a stored decision of `program` changes with time
/// alone (a lock date or a `no_order_grace_days` passes): its first `t/`
/// key that the log does not delete, or the log's first `t/` put. None
/// when no decision is due to change. Reads the `t/` keys up to the first
/// such one, and the log.
pub fn next_due<B: ReconBackend>(
    b: &B,
    program: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let pp = program_prefix(program);
    let log = Log::load(b, &pp)?;
    let instant = |logical: &str| {
        let t = logical["t/".len()..].split('/').next().unwrap_or("");
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt {
                tree: "recon".into(),
                key: format!("{pp}{logical}"),
                message: format!("not a due instant: {e}"),
            })
    };
    let mut first = None;
    for r in b.kv_scan(format!("{pp}t/").as_bytes()) {
        let (k, _) = r?;
        let logical = String::from_utf8_lossy(&k[pp.len()..]).into_owned();
        if !log.entries.contains_key(&logical) {
            first = Some(instant(&logical)?);
            break;
        }
    }
    let in_log = (log.entries.range("t/".to_owned()..))
        .take_while(|(k, _)| k.starts_with("t/"))
        .find(|(_, v)| v.is_some());
    if let Some((k, _)) = in_log {
        let t = instant(k)?;
        first = Some(first.map_or(t, |f: DateTime<Utc>| f.min(t)));
    }
    Ok(first)
}

/// The program's run state as stored, whatever its FORMAT and whether or
/// not this version reads its decisions ([`stored_state`] is what readers
/// use): `Ok(None)` when there is none, `Ok(Some(None))` when there is one
/// this version cannot decode. One key read; for `/status`.
pub fn raw_stored_state<B: ReconBackend>(
    b: &B,
    program: &str,
) -> Result<Option<Option<ProgramState>>, StoreError> {
    Ok(b.kv_get(&state_key(program))?.map(|v| decode_state(&v)))
}

/// Whether readers read the decisions of a run that left this state (see
/// [`stored_state`]).
pub fn is_read(s: &ProgramState) -> bool {
    READ_FORMATS.contains(&s.v)
}

/// Whether a stored state is in the FORMAT and bucket counts this version
/// writes (else its decisions are not read, or not where this version
/// looks: the next run is a full one).
pub fn is_this_layout(s: &ProgramState) -> bool {
    is_read(s) && s.buckets == (D_BUCKETS, X_BUCKETS)
}

/// Calls `each` with every stored decision of a program, in bucket order
/// (not claim order), decoded and as stored ([`codec::encode_decision`]).
/// False (and `each` never called) when the program has no finished run
/// to read ([`whole_run_state`]): its buckets may hold part of a full run.
pub fn scan_stored_decisions<B: ReconBackend>(
    b: &B,
    program: &str,
    mut each: impl FnMut(&Decision, &[u8]),
) -> Result<bool, StoreError> {
    if whole_run_state(b, program)?.is_none() {
        return Ok(false);
    }
    let pp = program_prefix(program);
    let log = Log::load(b, &pp)?;
    each_in_buckets(b, &pp, "D/", &log, |k, v| {
        each(&decode_decision(k, v)?.decision, v);
        Ok(())
    })?;
    Ok(true)
}

/// The stored state's bytes when the program's decisions are whole: a
/// run state this version reads ([`stored_state`]). None: never
/// reconciled, a full run under way or cut short (it deletes the state
/// first and writes it last, so the buckets hold part of its decisions:
/// QA42b B-H1), or a layout this version does not read. Readers of
/// decisions read nothing then.
fn whole_run_state<B: ReconBackend>(
    b: &B,
    program: &str,
) -> Result<Option<sled::IVec>, StoreError> {
    Ok(b.kv_get(&state_key(program))?
        .filter(|v| decode_state(v).is_some_and(|s| is_read(&s))))
}

pub(crate) fn decision_prefix(program: &str) -> String {
    format!("{}D/", program_prefix(program))
}

/// Every stored decision of `program` that `take` keeps (as what it
/// returns), pushed onto `out` and sorted in claim key order (`decision`
/// gives the decision of an item).
fn load_into<B: ReconBackend, T>(
    b: &B,
    program: &str,
    mut out: Vec<T>,
    mut take: impl FnMut(StoredDecision) -> Option<T>,
    decision: impl Fn(&T) -> &Decision,
) -> Result<Vec<T>, StoreError> {
    let pp = program_prefix(program);
    // Read between two reads of the state: a run that began or ended
    // meanwhile (the daemon reconciles beside its readers) may have left
    // part of its decisions in what was read, so the read is made again
    // (at most twice more; then the last read is kept).
    for attempt in 0..3 {
        let Some(before) = whole_run_state(b, program)? else {
            out.clear();
            return Ok(out);
        };
        out.clear();
        let log = Log::load(b, &pp)?;
        each_in_buckets(b, &pp, "D/", &log, |k, v| {
            out.extend(take(decode_decision(k, v)?));
            Ok(())
        })?;
        match whole_run_state(b, program)? {
            None => {
                out.clear();
                return Ok(out);
            }
            Some(after) if after != before && attempt < 2 => continue,
            Some(_) => break,
        }
    }
    // In logical key order (`d/<source>/<id>`, escaped).
    out.sort_by_cached_key(|t| {
        let d = decision(t);
        format!("{}/{}", esc(&d.claim.source), esc(&d.claim.id))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::backend::MemoryBackend;
    use crate::reconcile::synth::{self, SynthSpec};

    fn program() -> ProgramConfig {
        toml::from_str(
            r#"
id = "bench/1"
currency = "USD"
claims = ["impact", "everflow", "awin"]
orders = ["shop"]
return_window_days = 30
no_order_grace_days = 7
[match]
amount_tolerance_abs = "0.50"
"#,
        )
        .unwrap()
    }

    fn backend(spec: &SynthSpec) -> MemoryBackend {
        let data = synth::generate(spec);
        let b = MemoryBackend::new();
        let mut recs: Vec<Record> = data.claims.into_iter().map(Record::Conversion).collect();
        recs.extend(data.orders.into_iter().map(Record::Order));
        b.commit(&recs, spec.start);
        b
    }

    /// The store's JSON codec as FORMAT 1 wrote values: version 1 + JSON.
    fn v1_json(v: &serde_json::Value) -> Vec<u8> {
        let mut out = vec![1];
        out.extend(serde_json::to_vec(v).unwrap());
        out
    }

    /// One claim's decision, read from its bucket with the log laid over
    /// it, is the one the full load gives; an unknown claim has none.
    #[test]
    fn one_claims_decision_is_read_from_its_bucket_and_the_log() {
        let spec = SynthSpec::benchmark(300, 17);
        let (p, fx) = (program(), FxTable::empty());
        let b = backend(&spec);
        run_program(&b, &p, &fx, spec.start + chrono::Duration::days(20), false).unwrap();
        // A second, incremental run leaves its changes in the log.
        let s = run_program(&b, &p, &fx, spec.settled_now(), false).unwrap();
        assert!(!s.full && s.decisions_changed > 0);
        assert!(b
            .kv_snapshot()
            .keys()
            .any(|k| k.starts_with(log_prefix(&program_prefix(&p.id)).as_bytes())));
        for d in load_stored_decisions(&b, &p.id).unwrap() {
            let one = load_stored_decision(&b, &p.id, &d.claim.source, &d.claim.id).unwrap();
            assert_eq!(one.as_ref(), Some(&d));
        }
        assert_eq!(
            load_stored_decision(&b, &p.id, "impact", "no-such-claim").unwrap(),
            None
        );
    }

    /// A bucket read in place: the log's entries and the run's edits laid
    /// over its stored ones for every lookup, and its new value only when
    /// that differs from the stored one.
    #[test]
    fn a_bucket_lays_the_log_and_the_runs_edits_over_its_stored_entries() {
        let pk = b"P/X/\x00\x00\x00\x01".to_vec();
        let stored = codec::encode_bucket(
            [
                ("io/a/s/1", &b"1"[..]),
                ("io/a/s/2", b"2"),
                ("io/b/s/3", b"3"),
            ]
            .into_iter(),
        );
        let mut log = Log::default();
        log.entries.insert("io/a/s/2".into(), None);
        log.entries.insert("io/a/s/4".into(), Some(b"4".to_vec()));
        log.by_pk
            .insert(pk.clone(), vec!["io/a/s/2".into(), "io/a/s/4".into()]);
        let mut bk = Bucket::new(&pk, Some(stored.as_slice().into()), &log).unwrap();
        assert_eq!(bk.get("io/a/s/1"), Some(&b"1"[..]));
        assert_eq!(bk.get("io/a/s/2"), None);
        assert_eq!(bk.get("io/a/s/4"), Some(&b"4"[..]));
        assert_eq!(bk.get("io/c/s/9"), None);
        let keys = |bk: &Bucket, prefix: &str| -> Vec<String> {
            (bk.with_prefix(prefix).into_iter())
                .map(|(k, _)| k.to_owned())
                .collect()
        };
        assert_eq!(keys(&bk, "io/a/"), ["io/a/s/1", "io/a/s/4"]);
        assert_eq!(keys(&bk, "io/b/"), ["io/b/s/3"]);
        assert!(keys(&bk, "io/").len() == 3 && keys(&bk, "ic/").is_empty());
        // Puts return the value before, log included.
        assert_eq!(bk.put("io/a/s/4".into(), None), Some(b"4".to_vec()));
        assert_eq!(bk.put("io/a/s/0".into(), Some(b"0".to_vec())), None);
        assert_eq!(bk.put("io/b/s/3".into(), None), Some(b"3".to_vec()));
        assert_eq!(keys(&bk, "io/"), ["io/a/s/0", "io/a/s/1"]);
        let value = bk.new_value().unwrap().unwrap();
        assert_eq!(
            codec::decode_bucket(&value).unwrap(),
            [
                ("io/a/s/0".to_owned(), b"0".to_vec()),
                ("io/a/s/1".to_owned(), b"1".to_vec())
            ]
        );
        // Back to what is stored: nothing to write; everything gone: delete.
        for k in ["io/a/s/0", "io/a/s/4"] {
            bk.put(k.into(), None);
        }
        for (k, v) in [("io/a/s/2", b"2"), ("io/b/s/3", b"3")] {
            bk.put(k.into(), Some(v.to_vec()));
        }
        assert_eq!(bk.new_value(), None);
        for k in ["io/a/s/1", "io/a/s/2", "io/b/s/3"] {
            bk.put(k.into(), None);
        }
        assert_eq!(bk.new_value(), Some(None));
        // Unedited: nothing to write, nothing encoded.
        let plain = Bucket::new(&pk, Some(stored.as_slice().into()), &Log::default()).unwrap();
        assert_eq!(plain.new_value(), None);
        // Broken bytes are refused when read, naming the key.
        let mut broken = stored.clone();
        broken.truncate(stored.len() - 1);
        let e = Bucket::new(&pk, Some(broken.as_slice().into()), &Log::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("P/X/"), "{e}");
    }

    #[test]
    fn a_full_run_in_many_passes_writes_what_one_pass_writes() {
        let spec = SynthSpec::benchmark(2000, 5);
        let (p, fx) = (program(), FxTable::empty());
        let (one, many) = (backend(&spec), backend(&spec));
        // Leftovers in D buckets, between buckets and after them must go,
        // whichever pass meets them.
        let pp = program_prefix(&p.id);
        let junk = [
            slot_key(&pp, Slot::D(5), ""),
            slot_key(&pp, Slot::D(D_BUCKETS / 2), ""),
            format!("{pp}d/impact/x-1").into_bytes(),
        ];
        for b in [&one, &many] {
            let writes = junk.iter().map(|k| (k.clone(), Some(b"?".to_vec())));
            b.kv_apply(writes.collect()).unwrap();
        }
        // A first run, then one when time has moved on (payable dates
        // passed, decisions changed) over the tree the first one wrote.
        for now in [spec.start + chrono::Duration::days(20), spec.settled_now()] {
            let a = run_program_with(&one, &p, &fx, now, true, usize::MAX).unwrap();
            let b = run_program_with(&many, &p, &fx, now, true, 97).unwrap();
            assert!(a.full && b.full);
            assert!(b.decisions_changed > 0);
            assert_eq!(
                (
                    a.claims_judged,
                    a.decisions_changed,
                    a.payable,
                    &a.by_outcome
                ),
                (
                    b.claims_judged,
                    b.decisions_changed,
                    b.payable,
                    &b.by_outcome
                )
            );
            assert_eq!(one.kv_snapshot(), many.kv_snapshot());
        }
        let tree = many.kv_snapshot();
        assert!(junk.iter().all(|k| !tree.contains_key(k)));
        // And both agree with an incremental run: nothing left to change.
        let s = run_program(&many, &p, &fx, spec.settled_now(), false).unwrap();
        assert!(!s.full);
        assert_eq!(s.decisions_changed, 0);
    }

    #[test]
    fn a_format_1_tree_forces_a_clean_full_run() {
        let spec = SynthSpec::benchmark(300, 11);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let b = backend(&spec);
        // What FORMAT 1 left: its JSON state (current fingerprints, so only
        // the version differs), a per-claim JSON decision, index keys.
        let pp = program_prefix(&p.id);
        let old_state = serde_json::json!({
            "v": 1, "last_seq": b.last_seq().unwrap(),
            "program": p.fingerprint(), "fx": fx.fingerprint(),
        });
        b.kv_apply(vec![
            (state_key(&p.id), Some(v1_json(&old_state))),
            (
                format!("{pp}d/impact/x-1").into_bytes(),
                Some(v1_json(&serde_json::json!({"v": 1, "decision": {}}))),
            ),
            (
                format!("{pp}io/a1/shop/A-1").into_bytes(),
                Some(v1_json(&serde_json::Value::Null)),
            ),
            (
                format!("{pp}t/2026-01-01T00:00:00.000000000Z/impact/x-1").into_bytes(),
                Some(v1_json(&serde_json::Value::Null)),
            ),
        ])
        .unwrap();
        // Until that run, no reader takes the program as reconciled: its
        // decisions are not read (upgrade QA F1: kpi and reports showed
        // every claim unreconciled without a word).
        assert_eq!(stored_state(&b, &p.id).unwrap(), None);
        let raw = decode_state(&b.kv_get(&state_key(&p.id)).unwrap().unwrap()).unwrap();
        assert!(!is_current(&raw, &p, &fx));
        let s = run_program(&b, &p, &fx, now, false).unwrap();
        assert!(s.full, "a FORMAT-1 state must force a full run");
        assert!(stored_state(&b, &p.id)
            .unwrap()
            .is_some_and(|s| is_current(&s, &p, &fx)));

        // Same tree as a fresh store reconciled once: every old key is gone.
        let fresh = backend(&spec);
        run_program(&fresh, &p, &fx, now, false).unwrap();
        assert_eq!(b.kv_snapshot(), fresh.kv_snapshot());
        let state = decode_state(&b.kv_get(&state_key(&p.id)).unwrap().unwrap()).unwrap();
        assert_eq!(state.v, FORMAT);
        // And the next run is incremental and changes nothing.
        let s = run_program(&b, &p, &fx, now, false).unwrap();
        assert!(!s.full);
        assert_eq!(s.decisions_changed, 0);
    }

    /// `/status` (upgrade QA F1): why a program needs a run, from its run
    /// state alone, and always what [`super::super::needs_run`] decides.
    #[test]
    fn standing_says_why_the_next_run_is_full_as_is_current_decides() {
        use super::super::{standing_with, Standing};
        let spec = SynthSpec::benchmark(50, 3);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let fxp = fx.fingerprint();
        let b = backend(&spec);
        let check = |b: &MemoryBackend, p: &ProgramConfig, fxp: Option<&str>, want: Standing| {
            let s = standing_with(b, p, fxp).unwrap();
            assert_eq!(s.state, want, "{s:?}");
            assert_eq!(s.needs_run, want != Standing::Reconciled, "{s:?}");
            if let Some(fxp) = fxp {
                let current = stored_state(b, &p.id).unwrap().is_some_and(|st| {
                    st.as_of.is_none()
                        && st.buckets == (D_BUCKETS, X_BUCKETS)
                        && st.program == p.fingerprint()
                        && st.fx == fxp
                });
                assert_eq!(s.needs_run, !current, "{s:?}");
            }
            s
        };
        let never = check(&b, &p, Some(&fxp), Standing::Never);
        assert!(!never.decisions_read && never.judged_at.is_none() && never.last_seq.is_none());

        run_program(&b, &p, &fx, now, false).unwrap();
        let ran = check(&b, &p, Some(&fxp), Standing::Reconciled);
        let state = stored_state(&b, &p.id).unwrap().unwrap();
        assert!(ran.decisions_read);
        assert_eq!(
            (ran.judged_at, ran.payable, ran.last_seq),
            (Some(now), state.payable, Some(state.last_seq))
        );
        assert!(state.payable.is_some_and(|n| n > 0));

        let put = |bytes: Vec<u8>| b.kv_apply(vec![(state_key(&p.id), Some(bytes))]).unwrap();
        let with = |f: &dyn Fn(&mut ProgramState)| {
            let mut s = state.clone();
            f(&mut s);
            put(encode_state(&s));
        };
        // Older judging rules: an earlier JUDGE_VERSION, or none at all.
        for judge in [None, Some(engine::JUDGE_VERSION - 1)] {
            with(&|s| s.program = p.fingerprint_judged_by(judge));
            check(&b, &p, Some(&fxp), Standing::OlderRules);
        }
        // Another [[programs]] entry.
        let mut other = p.clone();
        other.return_window_days += 1;
        put(encode_state(&state));
        check(&b, &other, Some(&fxp), Standing::ConfigChanged);
        // Other rates; not compared when they could not be loaded.
        check(&b, &p, Some("other rates"), Standing::FxChanged);
        check(&b, &p, None, Standing::Reconciled);
        // `reckon reconcile --now`.
        with(&|s| s.as_of = Some(now));
        let as_of = check(&b, &p, Some(&fxp), Standing::AsOf);
        assert_eq!(as_of.store_as_of, Some(now));
        // Other bucket counts: read, but the next run is full.
        with(&|s| s.buckets = (1 << 10, 1 << 10));
        assert!(check(&b, &p, Some(&fxp), Standing::OlderLayout).decisions_read);
        // FORMAT 1: not read at all.
        put(v1_json(&serde_json::json!({
            "v": 1, "last_seq": 7, "program": p.fingerprint(), "fx": fxp,
        })));
        let v1 = check(&b, &p, Some(&fxp), Standing::OlderLayout);
        assert!(!v1.decisions_read);
        assert_eq!(v1.last_seq, Some(7));
        // A state this version cannot decode.
        put(vec![0xff, b'{']);
        let unreadable = check(&b, &p, Some(&fxp), Standing::OlderLayout);
        assert!(!unreadable.decisions_read && unreadable.last_seq.is_none());
    }

    #[test]
    fn a_state_of_older_judging_rules_is_not_current() {
        let spec = SynthSpec::benchmark(50, 3);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let b = backend(&spec);
        run_program(&b, &p, &fx, now, false).unwrap();
        let mut state = stored_state(&b, &p.id).unwrap().unwrap();
        assert!(is_current(&state, &p, &fx));
        // The fingerprint an older JUDGE_VERSION gave: readable decisions,
        // but not those of the present rules.
        state.program = state.program.replace('a', "b") + "0";
        assert!(!is_current(&state, &p, &fx));
    }

    /// QA findings of 2026-11-29: a full run after a config change said
    /// "32 decisions changed" when 2 outcomes did (the rest changed only in
    /// their recorded inputs), and a run's "payable" counted only the
    /// claims it judged. Runs now count the decisions with a new outcome,
    /// basis or payable flag apart, keep the program's payable count in
    /// their state, and record their `now` there for reports.
    /// QA20 F3: any `[[programs]]` edit reset every claim's `decided_at`,
    /// though the README says a run that judges a claim the same keeps it.
    /// A full run after an edit, and an incremental run after a restatement
    /// that changes no outcome, keep it; a claim judged differently gets
    /// the run's `now`.
    #[test]
    fn decided_at_stays_while_the_judgement_does() {
        let spec = SynthSpec::benchmark(400, 22);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let data = synth::generate(&spec);
        let b = backend(&spec);
        run_program(&b, &p, &fx, now, false).unwrap();
        let before = load_stored_decisions(&b, &p.id).unwrap();
        assert!(before.iter().all(|d| d.decided_at == now));

        // A longer grace period and a wider tolerance: every decision
        // records new inputs; some mismatches now match.
        let mut edited = p.clone();
        edited.no_order_grace_days += 1;
        edited.matching.amount_tolerance_pct = rust_decimal::Decimal::new(25, 0);
        let later = now + Duration::hours(1);
        let s = run_program(&b, &edited, &fx, later, false).unwrap();
        assert!(s.full);
        let after = load_stored_decisions(&b, &p.id).unwrap();
        assert_eq!(s.decisions_changed, before.len() as u64, "inputs recorded");
        let mut kept = 0;
        for (a, b) in before.iter().zip(&after) {
            let same = !new_outcome(a, b);
            let want = if same { now } else { later };
            assert_eq!(
                b.decided_at, want,
                "{} {:?} → {:?}",
                b.claim.id, a.outcome, b.outcome
            );
            kept += usize::from(same);
        }
        assert!(0 < kept && kept < after.len(), "{kept} of {}", after.len());

        // A restatement that changes nothing judged (the partner's name).
        let d = after
            .iter()
            .find(|d| d.payable && d.winner.is_none())
            .unwrap();
        let mut renamed = data
            .claims
            .iter()
            .find(|c| c.external_id == d.claim.id && c.source == d.claim.source)
            .unwrap()
            .clone();
        renamed.partner_name = Some("Renamed Partner".into());
        b.commit(&[Record::Conversion(renamed)], spec.start);
        let s = run_program(&b, &edited, &fx, later + Duration::hours(1), false).unwrap();
        assert_eq!((s.decisions_changed, s.outcomes_changed), (1, 0), "{s:?}");
        let now_stored = load_stored_decisions(&b, &p.id).unwrap();
        let again = now_stored.iter().find(|x| {
            x.claim
                == RecordRef {
                    revision: 2,
                    ..d.claim.clone()
                }
        });
        let again = again.expect("the restated claim's decision");
        assert_eq!(again.partner_name.as_deref(), Some("Renamed Partner"));
        assert_eq!(again.decided_at, d.decided_at);
    }

    #[test]
    fn runs_tell_new_outcomes_from_new_inputs_and_keep_the_payable_count() {
        let spec = SynthSpec::benchmark(400, 21);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let data = synth::generate(&spec);
        let b = backend(&spec);
        let payable = || {
            load_stored_decisions(&b, &p.id)
                .unwrap()
                .iter()
                .filter(|d| d.payable)
                .count() as u64
        };
        let first = run_program(&b, &p, &fx, now, false).unwrap();
        assert_eq!(first.outcomes_changed, first.decisions_changed, "all new");
        assert_eq!(first.payable_total, Some(payable()));
        let state = stored_state(&b, &p.id).unwrap().unwrap();
        assert_eq!(state.judged_at, Some(now));
        assert_eq!(state.payable, Some(payable()));

        // A wider tolerance: every decision records it (changed), a few
        // mismatches now match (new outcome and basis).
        let before = load_stored_decisions(&b, &p.id).unwrap();
        let mut wider = p.clone();
        wider.matching.amount_tolerance_pct = rust_decimal::Decimal::new(25, 0);
        let s = run_program(&b, &wider, &fx, now, false).unwrap();
        assert!(s.full);
        let after = load_stored_decisions(&b, &p.id).unwrap();
        let differ = |f: fn(&Decision, &Decision) -> bool| {
            before.iter().zip(&after).filter(|(a, b)| f(a, b)).count() as u64
        };
        assert_eq!(s.decisions_changed, differ(|a, b| a != b));
        assert_eq!(s.decisions_changed, before.len() as u64);
        assert_eq!(s.outcomes_changed, differ(new_outcome));
        assert!(
            0 < s.outcomes_changed && s.outcomes_changed < s.decisions_changed,
            "{s:?}"
        );
        assert_eq!(s.payable_total, Some(payable()));

        // Incremental: one claim reversed (a new outcome, one payable
        // fewer), another renamed (changed, same outcome).
        let paid: Vec<&plugin_api::Conversion> = data
            .claims
            .iter()
            .filter(|c| {
                after
                    .iter()
                    .any(|d| d.claim.id == c.external_id && d.payable && d.winner.is_none())
            })
            .collect();
        let mut reversed = paid[0].clone();
        reversed.status = plugin_api::ConversionStatus::Reversed;
        let mut renamed = paid[1].clone();
        renamed.partner_name = Some("Renamed Partner".into());
        b.commit(
            &[Record::Conversion(reversed), Record::Conversion(renamed)],
            spec.start,
        );
        let later = now + Duration::hours(1);
        let s = run_program(&b, &wider, &fx, later, false).unwrap();
        assert!(!s.full);
        assert_eq!((s.decisions_changed, s.outcomes_changed), (2, 1), "{s:?}");
        assert_eq!(s.payable, 1, "of the claims judged");
        assert_eq!(s.payable_total, Some(payable()));
        assert_eq!(s.payable_total, first_payable_minus(&after, 1));
        let state = stored_state(&b, &p.id).unwrap().unwrap();
        assert_eq!(state.judged_at, Some(later), "every run records its now");
        // A run with nothing to judge records its now too.
        let idle = later + Duration::hours(1);
        let s = run_program(&b, &wider, &fx, idle, false).unwrap();
        assert_eq!((s.claims_judged, s.payable_total), (0, Some(payable())));
        let state = stored_state(&b, &p.id).unwrap().unwrap();
        assert_eq!(state.judged_at, Some(idle));
    }

    fn first_payable_minus(ds: &[Decision], n: u64) -> Option<u64> {
        Some(ds.iter().filter(|d| d.payable).count() as u64 - n)
    }

    #[test]
    fn a_state_without_a_payable_count_keeps_none_until_a_full_run() {
        // A state written before the count existed: incremental runs cannot
        // know the total and say nothing; the next full run counts it.
        let spec = SynthSpec::benchmark(100, 4);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let b = backend(&spec);
        run_program(&b, &p, &fx, now, false).unwrap();
        let mut state = stored_state(&b, &p.id).unwrap().unwrap();
        state.payable = None;
        state.judged_at = None;
        b.kv_apply(vec![(state_key(&p.id), Some(encode_state(&state)))])
            .unwrap();
        let s = run_program(&b, &p, &fx, now, false).unwrap();
        assert_eq!((s.full, s.payable_total), (false, None));
        let s = run_program(&b, &p, &fx, now, true).unwrap();
        assert!(s.full);
        assert!(s.payable_total.is_some_and(|n| n > 0), "{s:?}");
    }

    #[test]
    fn read_ahead_reads_records_buckets_and_orders_but_not_what_is_loaded() {
        let spec = SynthSpec::benchmark(1500, 9);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let b = backend(&spec);
        run_program(&b, &p, &fx, now, false).unwrap();
        let pp = program_prefix(&p.id);
        let decisions = load_stored_decisions(&b, &p.id).unwrap();
        let picked: Vec<&Decision> = decisions.iter().step_by(2).take(600).collect();
        let keys: Vec<Key2> = (picked.iter())
            .map(|d| (d.claim.source.clone(), d.claim.id.clone()))
            .collect();
        // In reverse: each stage sorts its keys itself.
        let refs: Vec<&Key2> = keys.iter().rev().collect();
        let d_bucket = |c: &Key2| {
            let dk = decision_key(c);
            slot_key(&pp, slot(&dk), &dk)
        };
        let none = (&|_: &[u8]| false) as &dyn Fn(&[u8]) -> bool;
        let all = read_ahead_on(2, &b, &pp, &Log::default(), &refs, (none, &|_| false));
        assert_eq!(all.claims.len(), keys.len());
        let mut matched = 0;
        for (c, d) in keys.iter().zip(&picked) {
            assert!(matches!(all.claims.get(c), Some(Some(_))), "{c:?}");
            assert!(all.buckets.contains_key(&d_bucket(c)), "{c:?}");
            let by_id = matches!(d.matched_by, Some(MatchedBy::OrderId | MatchedBy::ClickId));
            if let (Some(o), true) = (&d.order, by_id) {
                let o = (o.source.clone(), o.id.clone());
                assert!(matches!(all.orders.get(&o), Some(Some(_))), "{o:?}");
                matched += 1;
            }
        }
        assert!(matched > 400, "{matched}");
        // What the run holds already is not read again.
        let held = d_bucket(&keys[0]);
        let order = picked.iter().find_map(|d| d.order.clone()).unwrap();
        let order = (order.source, order.id);
        let part = read_ahead_on(
            2,
            &b,
            &pp,
            &Log::default(),
            &refs,
            (&|pk: &[u8]| pk == held.as_slice(), &|o: &Key2| *o == order),
        );
        assert!(!part.buckets.contains_key(&held));
        assert!(!part.orders.contains_key(&order));
        assert_eq!(part.buckets.len(), all.buckets.len() - 1);
        assert_eq!(part.orders.len(), all.orders.len() - 1);
        assert_eq!(part.claims.len(), all.claims.len());
    }

    /// A [`MemoryBackend`] whose `kv_apply` fails from its `fail_at`-th call.
    struct FailingApply {
        inner: MemoryBackend,
        calls: std::sync::atomic::AtomicUsize,
        fail_at: usize,
    }

    impl ReconBackend for FailingApply {
        fn last_seq(&self) -> Result<u64, StoreError> {
            self.inner.last_seq()
        }
        fn changes_since(
            &self,
            after: u64,
        ) -> Box<dyn Iterator<Item = Result<crate::store::Change, StoreError>> + '_> {
            self.inner.changes_since(after)
        }
        fn scan_records(
            &self,
            kind: RecordKind,
            source: &str,
        ) -> Box<dyn Iterator<Item = Result<Stored, StoreError>> + '_> {
            self.inner.scan_records(kind, source)
        }
        fn get_record(
            &self,
            kind: RecordKind,
            source: &str,
            key: &str,
        ) -> Result<Option<Stored>, StoreError> {
            self.inner.get_record(kind, source, key)
        }
        fn kv_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
            self.inner.kv_get(key)
        }
        fn kv_scan(
            &self,
            prefix: &[u8],
        ) -> Box<dyn Iterator<Item = Result<KeyValue, StoreError>> + '_> {
            self.inner.kv_scan(prefix)
        }
        fn kv_apply(&self, batch: Vec<KeyWrite>) -> Result<(), StoreError> {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if n >= self.fail_at {
                return Err(StoreError::Io {
                    path: "recon".into(),
                    message: "No space left on device".into(),
                });
            }
            self.inner.kv_apply(batch)
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.inner.flush()
        }
    }

    #[test]
    fn incremental_runs_log_their_changes_a_failed_one_changes_nothing_and_a_full_run_folds() {
        let spec = SynthSpec::benchmark(400, 9);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let pp = program_prefix(&p.id);
        let b = FailingApply {
            inner: backend(&spec),
            calls: Default::default(),
            fail_at: usize::MAX,
        };
        run_program(&b, &p, &fx, now, false).unwrap();
        let log_values = |b: &MemoryBackend| b.kv_scan(log_prefix(&pp).as_bytes()).count();
        let buckets = |b: &MemoryBackend| -> BTreeMap<Vec<u8>, Vec<u8>> {
            let (d, x) = (format!("{pp}D/"), format!("{pp}X/"));
            (b.kv_snapshot().into_iter())
                .filter(|(k, _)| k.starts_with(d.as_bytes()) || k.starts_with(x.as_bytes()))
                .collect()
        };
        assert_eq!(log_values(&b.inner), 0);
        let reverse = |b: &MemoryBackend, skip: usize, step: usize| {
            let changed: Vec<Record> = (synth::generate(&spec).claims.into_iter())
                .skip(skip)
                .step_by(step)
                .map(|mut c| {
                    c.status = plugin_api::ConversionStatus::Reversed;
                    Record::Conversion(c)
                })
                .collect();
            b.commit(&changed, now);
        };
        reverse(&b.inner, 0, 7);
        // A run whose write fails leaves buckets, log and state as they were.
        let before = b.inner.kv_snapshot();
        let b = FailingApply {
            fail_at: b.calls.load(std::sync::atomic::Ordering::SeqCst) + 1,
            ..b
        };
        assert!(run_program(&b, &p, &fx, now, false).is_err());
        assert_eq!(b.inner.kv_snapshot(), before);
        let b = FailingApply {
            fail_at: usize::MAX,
            ..b
        };
        // Each run appends one log value; the buckets stay as they were.
        let s = run_program(&b, &p, &fx, now, false).unwrap();
        assert!(!s.full && s.outcomes_changed > 40, "{s:?}");
        assert_eq!(log_values(&b.inner), 1);
        assert_eq!(
            buckets(&b.inner),
            buckets(&MemoryBackend::from_snapshot(before))
        );
        reverse(&b.inner, 3, 11);
        assert!(!run_program(&b, &p, &fx, now, false).unwrap().full);
        assert_eq!(log_values(&b.inner), 2);
        let logged = logical_entries(&b.inner, &p.id).unwrap();
        let decisions = load_stored_decisions(&b.inner, &p.id).unwrap();
        assert_eq!(decisions.len(), synth::generate(&spec).claims.len());
        // A full run folds the log first: it finds nothing to change, and
        // every entry (decided_at too) reads as it did through the log.
        let s = run_program(&b, &p, &fx, now, true).unwrap();
        assert_eq!((s.full, s.decisions_changed), (true, 0));
        assert_eq!(log_values(&b.inner), 0);
        assert_eq!(logical_entries(&b.inner, &p.id).unwrap(), logged);
        assert_eq!(load_stored_decisions(&b.inner, &p.id).unwrap(), decisions);
    }

    #[test]
    fn a_log_of_many_runs_changing_one_claim_is_folded_at_fold_values() {
        let spec = SynthSpec::benchmark(30, 4);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let pp = program_prefix(&p.id);
        let b = backend(&spec);
        run_program(&b, &p, &fx, now, false).unwrap();
        let claim = synth::generate(&spec).claims.remove(0);
        let mut most = 0;
        for i in 0..FOLD_VALUES * 2 {
            let mut c = claim.clone();
            if i % 2 == 0 {
                c.status = plugin_api::ConversionStatus::Reversed;
            }
            b.commit(&[Record::Conversion(c)], now);
            let s = run_program(&b, &p, &fx, now, false).unwrap();
            assert_eq!((s.full, s.decisions_changed), (false, 1), "run {i}");
            most = most.max(b.kv_scan(log_prefix(&pp).as_bytes()).count());
        }
        assert_eq!(most, FOLD_VALUES - 1);
        let logged = logical_entries(&b, &p.id).unwrap();
        let s = run_program(&b, &p, &fx, now, true).unwrap();
        assert_eq!(s.decisions_changed, 0);
        assert_eq!(logical_entries(&b, &p.id).unwrap(), logged);
    }

    #[test]
    fn a_format_2_state_is_read_as_it_is_and_the_next_run_is_incremental() {
        let spec = SynthSpec::benchmark(50, 6);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let b = backend(&spec);
        run_program(&b, &p, &fx, now, false).unwrap();
        // What the release before the decision log left: the same layout,
        // its state written as FORMAT 2.
        let mut s2 = stored_state(&b, &p.id).unwrap().unwrap();
        s2.v = 2;
        let mut v = vec![2u8];
        v.extend(serde_json::to_vec(&s2).unwrap());
        b.kv_apply(vec![(state_key(&p.id), Some(v))]).unwrap();
        assert_eq!(stored_state(&b, &p.id).unwrap(), Some(s2.clone()));
        assert!(is_current(&s2, &p, &fx));
        let s = run_program(&b, &p, &fx, now, false).unwrap();
        assert!(!s.full);
        assert_eq!(stored_state(&b, &p.id).unwrap().unwrap().v, FORMAT);
    }

    /// A full run's parts are judged on threads and appended in order:
    /// the arena is the one a single thread would have made, so a run's
    /// result does not depend on the machine's cores.
    #[test]
    fn parts_made_on_threads_append_to_what_one_thread_makes() {
        let entries: Vec<(String, Vec<u8>)> = (0..50)
            .map(|i| (format!("d/net/{i}"), vec![i as u8; i % 7]))
            .collect();
        let make = |es: &[(String, Vec<u8>)]| {
            let mut a = Arena::default();
            for (k, v) in es {
                a.push(|ks| ks.push_str(k), |vs| vs.extend_from_slice(v));
            }
            a
        };
        let whole = make(&entries);
        let chunks: Vec<&[(String, Vec<u8>)]> = entries.chunks(17).collect();
        let mut joined = Arena::default();
        for part in each_on_a_thread(&chunks, |es| make(es)) {
            joined.append(part);
        }
        assert_eq!(joined.keys, whole.keys);
        assert_eq!(joined.vals, whole.vals);
        let view = |a: &Arena| -> Vec<(Slot, String, Vec<u8>)> {
            (a.entries.iter())
                .map(|e| (e.slot, a.key(e).to_owned(), a.val(e).to_vec()))
                .collect()
        };
        assert_eq!(view(&joined), view(&whole));
        // A part that panics fails the run, not silently drops its claims.
        let r = std::panic::catch_unwind(|| {
            each_on_a_thread(&[1, 2, 3], |&i| {
                assert_ne!(i, 2, "part 2 failed");
                i
            })
        });
        assert!(r.is_err());
        assert_eq!(each_on_a_thread(&[1, 2, 3], |&i| i * 10), [10, 20, 30]);
    }

    #[test]
    fn a_full_run_whose_write_fails_reports_it_and_leaves_no_state() {
        let spec = SynthSpec::benchmark(300, 5);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        // Call 1 removes the state; call 2, on the writer thread, fails.
        let b = FailingApply {
            inner: backend(&spec),
            calls: Default::default(),
            fail_at: 2,
        };
        let e = run_program(&b, &p, &fx, now, false).unwrap_err();
        assert!(e.to_string().contains("No space left on device"), "{e}");
        assert_eq!(stored_state(&b.inner, &p.id).unwrap(), None);
        assert!(load_stored_decisions(&b.inner, &p.id).unwrap().is_empty());
        // Once writes work again, the next run is a full one.
        let b = FailingApply {
            fail_at: usize::MAX,
            ..b
        };
        assert!(run_program(&b, &p, &fx, now, false).unwrap().full);
    }

    /// QA42b B-H1: a full run cut short after some of its batches were
    /// written leaves part of its decisions in the buckets and no state;
    /// every reader then reads none (reports and kpi showed the part, and
    /// after a config change a mix of old and new rules' decisions).
    #[test]
    fn a_full_run_cut_short_leaves_nothing_for_readers() {
        let spec = SynthSpec::benchmark(3000, 5);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        // Call 1 removes the state, call 2 writes the first batch, call 3
        // (the second batch) fails.
        let b = FailingApply {
            inner: backend(&spec),
            calls: Default::default(),
            fail_at: 3,
        };
        assert!(run_program_with(&b, &p, &fx, now, false, 1000).is_err());
        assert_eq!(stored_state(&b.inner, &p.id).unwrap(), None);
        let written = (b.inner.kv_scan(decision_prefix(&p.id).as_bytes()))
            .map(|r| codec::bucket_len(&r.unwrap().1).unwrap())
            .sum::<usize>();
        assert!(written > 0, "the first batch holds decisions");
        assert!(load_stored_decisions(&b.inner, &p.id).unwrap().is_empty());
        let earning = |d: &Decision| d.outcome.earns();
        assert!(load_stored_decisions_due_where(&b.inner, &p.id, earning)
            .unwrap()
            .is_empty());
        let mut seen = 0;
        assert!(!scan_stored_decisions(&b.inner, &p.id, |_, _| seen += 1).unwrap());
        assert_eq!(seen, 0);
        // The next run is full, and then every decision reads.
        let b = FailingApply {
            fail_at: usize::MAX,
            ..b
        };
        assert!(run_program(&b, &p, &fx, now, false).unwrap().full);
        let all = load_stored_decisions(&b.inner, &p.id).unwrap();
        assert_eq!(all.len(), synth::generate(&spec).claims.len());
        assert!(written < all.len(), "the cut-short run wrote part of them");
        let c = &all[0].claim;
        assert!(load_stored_decision(&b.inner, &p.id, &c.source, &c.id)
            .unwrap()
            .is_some());
        assert!(scan_stored_decisions(&b.inner, &p.id, |_, _| {}).unwrap());
        // A state gone again (a full run under way): no decision reads.
        b.inner.kv_apply(vec![(state_key(&p.id), None)]).unwrap();
        assert_eq!(
            load_stored_decision(&b.inner, &p.id, &c.source, &c.id).unwrap(),
            None
        );
    }

    #[test]
    fn a_large_incremental_run_reads_ahead_and_equals_a_full_run() {
        let spec = SynthSpec::benchmark(1500, 9);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let data = synth::generate(&spec);
        let b = backend(&spec);
        assert!(run_program(&b, &p, &fx, now, false).unwrap().full);
        // Change every other claim (status or amount) and drop some orders'
        // refunds: more than READ_AHEAD_MIN claims to re-judge.
        let mut changed: Vec<Record> = Vec::new();
        for (i, c) in data.claims.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            let mut c = c.clone();
            if i % 4 == 0 {
                c.status = plugin_api::ConversionStatus::Reversed;
            } else if let Some(m) = &mut c.sale_amount {
                m.amount *= rust_decimal::Decimal::new(12, 1);
            }
            changed.push(Record::Conversion(c));
        }
        for o in data.orders.iter().step_by(7) {
            let mut o = o.clone();
            o.refunds.clear();
            changed.push(Record::Order(o));
        }
        assert!(changed.len() > READ_AHEAD_MIN);
        b.commit(&changed, spec.start);
        let inc = run_program(&b, &p, &fx, now, false).unwrap();
        assert!(!inc.full);
        assert!(inc.claims_judged as usize > READ_AHEAD_MIN);

        let fresh = MemoryBackend::new();
        let mut latest: BTreeMap<(&str, String, String), Record> = BTreeMap::new();
        let all = data.claims.iter().cloned().map(Record::Conversion);
        let all = all.chain(data.orders.iter().cloned().map(Record::Order));
        for r in all.chain(changed) {
            latest.insert((r.kind().as_str(), r.source().to_owned(), r.key()), r);
        }
        fresh.commit(&latest.into_values().collect::<Vec<_>>(), spec.start);
        run_program(&fresh, &p, &fx, now, false).unwrap();
        let strip = |ds: Vec<Decision>| -> Vec<Decision> {
            ds.into_iter()
                .map(|mut d| {
                    d.claim.revision = 0;
                    if let Some(o) = &mut d.order {
                        o.revision = 0;
                    }
                    if let Some(w) = &mut d.winner {
                        w.revision = 0;
                    }
                    d
                })
                .collect()
        };
        assert_eq!(
            strip(load_stored_decisions(&b, &p.id).unwrap()),
            strip(load_stored_decisions(&fresh, &p.id).unwrap())
        );
        let no_d = |m: BTreeMap<String, Vec<u8>>| -> Vec<String> {
            m.into_iter()
                .filter(|(k, _)| !k.starts_with("d/"))
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect()
        };
        assert_eq!(
            no_d(logical_entries(&b, &p.id).unwrap()),
            no_d(logical_entries(&fresh, &p.id).unwrap())
        );
    }

    #[test]
    fn decisions_load_in_logical_key_order_with_escaped_ids() {
        let spec = SynthSpec::benchmark(50, 3);
        let mut data = synth::generate(&spec);
        let ids = ["x/1", "x%2", "x-3", "x.4", "x0", "x"];
        for (c, id) in data.claims.iter_mut().zip(ids) {
            c.source = "impact".into();
            c.external_id = id.into();
        }
        let b = MemoryBackend::new();
        let mut recs: Vec<Record> = data.claims.into_iter().map(Record::Conversion).collect();
        recs.extend(data.orders.into_iter().map(Record::Order));
        let n = recs.len() - 50;
        b.commit(&recs, spec.start);
        let p = program();
        run_program(&b, &p, &FxTable::empty(), spec.settled_now(), true).unwrap();
        let keys: Vec<String> = load_stored_decisions(&b, &p.id)
            .unwrap()
            .iter()
            .map(|d| decision_key(&(d.claim.source.clone(), d.claim.id.clone())))
            .collect();
        assert_eq!(keys.len(), n);
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(keys.contains(&"d/impact/x%2F1".to_owned()));

        // A filtered load is the same subset, in the same order.
        let all = load_stored_decisions(&b, &p.id).unwrap();
        let earning = |d: &Decision| d.outcome.earns();
        let some = load_stored_decisions_where(&b, &p.id, earning).unwrap();
        let want: Vec<Decision> = all.into_iter().filter(earning).collect();
        assert!(!want.is_empty() && want.len() < n);
        assert_eq!(some, want);
    }

    #[test]
    fn an_unreadable_state_forces_a_full_run_and_decisions_round_trip() {
        let spec = SynthSpec::benchmark(200, 5);
        let (p, fx, now) = (program(), FxTable::empty(), spec.settled_now());
        let b = backend(&spec);
        let first = run_program(&b, &p, &fx, now, false).unwrap();
        assert!(first.full);
        b.kv_apply(vec![(state_key(&p.id), Some(b"garbage".to_vec()))])
            .unwrap();
        let again = run_program(&b, &p, &fx, now, false).unwrap();
        assert!(again.full);
        assert_eq!(again.decisions_changed, 0, "same judgements, same bytes");

        // The stored decisions are exactly what the engine decides.
        let data = synth::generate(&spec);
        let claims: Vec<ClaimInput> = data
            .claims
            .into_iter()
            .map(|claim| ClaimInput { claim, revision: 1 })
            .collect();
        let orders: Vec<OrderInput> = data
            .orders
            .into_iter()
            .map(|order| OrderInput { order, revision: 1 })
            .collect();
        let want = engine::decide(&p, &claims, &orders, &fx, now);
        assert_eq!(load_stored_decisions(&b, &p.id).unwrap(), want);
    }
}
