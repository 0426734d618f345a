//! Decisions as data: how a program's decisions and match indexes live in
//! the `recon` tree, and the full and incremental runs that keep them.
//!
//! Keys (every component escaped so it holds no `/`; `P` = program id):
//!
//! | key | value | what for |
//! |---|---|---|
//! | `P/s` | [`ProgramState`] | last change seq seen, config and FX fingerprints |
//! | `P/d/<claim src>/<claim id>` | [`StoredDecision`] | the decision and the claim's match keys |
//! | `P/io/<norm id>/<order src>/<order id>` | [`OrderEntry`] under the order's own (primary) id, null under an alt id | orders by normalised id; the order's match keys and the claims matched to it |
//! | `P/ic/<click>/<order src>/<order id>` | null | orders by click id |
//! | `P/ik/<coupon>/<order src>/<order id>` | created_at | orders by coupon (coupon matching only) |
//! | `P/qo/<norm id>/<claim src>/<claim id>` | null | claims quoting an order id they are not matched by |
//! | `P/qc/<click>/<claim src>/<claim id>` | null | claims with a click id, not matched by order id or click |
//! | `P/qk/<coupon>/<claim src>/<claim id>` | null | claims with a coupon, not matched by order id or click (coupon matching only) |
//! | `P/t/<time>/<claim src>/<claim id>` | null | decisions that change with time alone |
//!
//! Claims matched by their order id (nearly all) need no reverse index:
//! the orders they could move to are found through the order index and the
//! claims lists of the orders already holding that id. So a program costs
//! about one key per claim and one per order id.
//!
//! A **full run** (first run, or the program's config or the FX table
//! changed) judges every claim and rewrites the program's keys (merge with
//! what is there: unchanged values are not written). An **incremental run**
//! reads the change log since `P/s`'s seq and re-judges the closure:
//! touched claims; for each touched order (old and new values): the claims
//! matched to it, the claims matched to any other order under one of its ids
//! or click ids (it may win that tie now), and the claims in the `q*`
//! indexes under its ids, click ids and coupon; claims whose time-based
//! change is due; and every claim sharing an order (old or new) with any of
//! those. Everything else keeps its match and contest, so the result equals a
//! full run. A decision whose judgement is unchanged keeps its `decided_at`
//! and is not rewritten.

use super::backend::ReconBackend;
use super::config::ProgramConfig;
use super::engine::{self, ClaimInput, OrderInput};
use super::model::{Decision, MatchedBy, Outcome};
use super::ReconcileError;
use crate::fx::FxTable;
use crate::store::{StoreError, Stored};
use chrono::{DateTime, Duration, Utc};
use plugin_api::protocol::{Record, RecordKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Version of the values written by this module.
const FORMAT: u32 = 1;
/// Puts/deletes per atomic batch during a full run.
const CHUNK: usize = 20_000;

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
    /// Value format version.
    pub v: u32,
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
    /// Decisions new or different from the stored ones.
    pub decisions_changed: u64,
    /// Judged claims by outcome.
    pub by_outcome: BTreeMap<Outcome, u64>,
    /// Judged claims payable now.
    pub payable: u64,
    /// Change seq reconciled up to.
    pub last_seq: u64,
}

pub(crate) fn esc(s: &str) -> String {
    if !s.contains(['%', '/']) {
        return s.to_owned();
    }
    s.replace('%', "%25").replace('/', "%2F")
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

pub(crate) fn program_prefix(p: &str) -> String {
    format!("{}/", esc(p))
}
pub(crate) fn decision_prefix(p: &str) -> String {
    format!("{}/d/", esc(p))
}
fn state_key(p: &str) -> String {
    format!("{}/s", esc(p))
}
fn decision_key(p: &str, c: &Key2) -> String {
    format!("{}/d/{}/{}", esc(p), esc(&c.0), esc(&c.1))
}
/// The order's primary index entry: under its own normalised id.
fn primary_key(p: &str, o: &Key2) -> String {
    let norm = engine::normalize_order_id(&o.1).unwrap_or_default();
    format!("{}/io/{}/{}/{}", esc(p), esc(&norm), esc(&o.0), esc(&o.1))
}
fn index_prefix(p: &str, kind: &str, value: &str) -> String {
    format!("{}/{kind}/{}/", esc(p), esc(value))
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
    let ids: BTreeSet<String> = std::iter::once(o.order_id.as_str())
        .chain(o.alt_ids.iter().map(String::as_str))
        .filter_map(engine::normalize_order_id)
        .collect();
    let clicks: BTreeSet<String> = o
        .click_ids
        .iter()
        .filter_map(|c| engine::normalize_click_id(c))
        .map(str::to_owned)
        .collect();
    OrderKeys {
        ids: ids.into_iter().collect(),
        clicks: clicks.into_iter().collect(),
        coupon: o.coupon.as_deref().and_then(engine::normalize_coupon),
        created_at: o.created_at,
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // Serialising these plain data types cannot fail (string keys only).
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, v: Value) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
        tree: "recon".into(),
        key: key.to_owned(),
        message: e.to_string(),
    })
}

/// Every key a decision owns, with its value.
fn claim_entries(p: &str, sd: &StoredDecision, coupons: bool) -> Vec<(String, Value)> {
    let d = &sd.decision;
    let c = (d.claim.source.clone(), d.claim.id.clone());
    let mut out = vec![(decision_key(p, &c), to_value(sd))];
    out.extend(claim_index_keys(p, sd, coupons));
    out
}

/// The index keys of a decision (all but the decision itself).
fn claim_index_keys(p: &str, sd: &StoredDecision, coupons: bool) -> Vec<(String, Value)> {
    let d = &sd.decision;
    let tail = format!("{}/{}", esc(&d.claim.source), esc(&d.claim.id));
    let mut out = Vec::new();
    let by_id = d.matched_by == Some(MatchedBy::OrderId);
    let by_click = by_id || d.matched_by == Some(MatchedBy::ClickId);
    if let Some(oid) = sd.keys.oid.as_ref().filter(|_| !by_id) {
        out.push((format!("{}{tail}", index_prefix(p, "qo", oid)), Value::Null));
    }
    if let Some(click) = sd.keys.click.as_ref().filter(|_| !by_click) {
        out.push((
            format!("{}{tail}", index_prefix(p, "qc", click)),
            Value::Null,
        ));
    }
    if coupons && !by_click {
        if let Some(k) = &sd.keys.coupon {
            out.push((format!("{}{tail}", index_prefix(p, "qk", k)), Value::Null));
        }
    }
    if let Some(t) = sd.due {
        out.push((format!("{}/t/{}/{tail}", esc(p), ts(t)), Value::Null));
    }
    out
}

/// Every key an order owns, with its value.
fn order_entries(p: &str, o: &Key2, entry: &OrderEntry, coupons: bool) -> Vec<(String, Value)> {
    let mut out = vec![(primary_key(p, o), to_value(entry))];
    out.extend(order_index_keys(p, o, &entry.keys, coupons));
    out
}

/// The secondary index keys of an order (all but its primary entry).
fn order_index_keys(p: &str, o: &Key2, keys: &OrderKeys, coupons: bool) -> Vec<(String, Value)> {
    let tail = format!("{}/{}", esc(&o.0), esc(&o.1));
    let primary = engine::normalize_order_id(&o.1).unwrap_or_default();
    let mut out = Vec::new();
    for id in keys.ids.iter().filter(|id| **id != primary) {
        out.push((format!("{}{tail}", index_prefix(p, "io", id)), Value::Null));
    }
    for c in &keys.clicks {
        out.push((format!("{}{tail}", index_prefix(p, "ic", c)), Value::Null));
    }
    if coupons {
        if let Some(k) = &keys.coupon {
            out.push((
                format!("{}{tail}", index_prefix(p, "ik", k)),
                Value::String(ts(keys.created_at)),
            ));
        }
    }
    out
}

fn stored_decision(program: &ProgramConfig, d: Decision, keys: ClaimKeys) -> StoredDecision {
    let due = engine::next_change_at(program, &d);
    StoredDecision {
        v: FORMAT,
        decision: d,
        keys,
        due,
    }
}

/// Same judgement, ignoring when it was made.
fn same_judgement(a: &Decision, b: &Decision) -> bool {
    a.decided_at == b.decided_at || {
        let mut a2 = a.clone();
        a2.decided_at = b.decided_at;
        a2 == *b
    }
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
    let hi = b.last_seq()?;
    let program_fp = program.fingerprint();
    let fx_fp = fx.fingerprint();
    let state: Option<ProgramState> = match b.kv_get(&state_key(&program.id))? {
        Some(v) => Some(decode(&state_key(&program.id), v)?),
        None => None,
    };
    let new_state = ProgramState {
        v: FORMAT,
        last_seq: hi,
        program: program_fp.clone(),
        fx: fx_fp.clone(),
    };
    match state {
        Some(s) if !force_full && s.v == FORMAT && s.program == program_fp && s.fx == fx_fp => {
            incremental_run(b, program, fx, now, s.last_seq, new_state)
        }
        _ => full_run(b, program, fx, now, new_state),
    }
}

fn summarize(
    program: &str,
    full: bool,
    decisions: &[Decision],
    changed: u64,
    seq: u64,
) -> ProgramSummary {
    let mut s = ProgramSummary {
        program: program.to_owned(),
        full,
        claims_judged: decisions.len() as u64,
        decisions_changed: changed,
        last_seq: seq,
        ..Default::default()
    };
    for d in decisions {
        *s.by_outcome.entry(d.outcome).or_default() += 1;
        s.payable += u64::from(d.payable);
    }
    s
}

fn full_run<B: ReconBackend>(
    b: &B,
    program: &ProgramConfig,
    fx: &FxTable,
    now: DateTime<Utc>,
    new_state: ProgramState,
) -> Result<ProgramSummary, ReconcileError> {
    let p = program.id.as_str();
    let coupons = program.matching.coupon_matching;
    let mut claims = Vec::new();
    for src in &program.claims {
        for s in b.scan_records(RecordKind::Conversion, src) {
            claims.push(as_claim(s?, src)?);
        }
    }
    let mut orders = Vec::new();
    for src in &program.orders {
        for s in b.scan_records(RecordKind::Order, src) {
            orders.push(as_order(s?, src)?);
        }
    }
    let decisions = engine::decide(program, &claims, &orders, fx, now);
    // `decide` returns claims in (source, id) order: align their keys.
    claims.sort_unstable_by(|a, b| {
        (&a.claim.source, &a.claim.external_id).cmp(&(&b.claim.source, &b.claim.external_id))
    });
    let keys: Vec<ClaimKeys> = claims.iter().map(|c| claim_keys(&c.claim)).collect();
    drop(claims);
    let summary = summarize(p, true, &decisions, 0, new_state.last_seq);

    let mut matched: BTreeMap<(&str, &str), Vec<(String, String)>> = BTreeMap::new();
    for d in &decisions {
        if let Some(o) = &d.order {
            matched
                .entry((o.source.as_str(), o.id.as_str()))
                .or_default()
                .push((d.claim.source.clone(), d.claim.id.clone()));
        }
    }
    // Values are made only when written (lazily): a full set of JSON values
    // would take several times the memory of the decisions.
    enum Lazy {
        Ready(Value),
        Decision(usize),
        Order(usize),
    }
    let mut entries: Vec<(String, Lazy)> =
        Vec::with_capacity(decisions.len() * 2 + orders.len() * 2);
    let mut order_list: Vec<(Key2, OrderEntry)> = Vec::with_capacity(orders.len());
    for o in &orders {
        let ok = (o.order.source.clone(), o.order.order_id.clone());
        let entry = OrderEntry {
            keys: order_keys(&o.order),
            claims: matched
                .remove(&(o.order.source.as_str(), o.order.order_id.as_str()))
                .unwrap_or_default(),
        };
        entries.push((primary_key(p, &ok), Lazy::Order(order_list.len())));
        entries.extend(
            order_index_keys(p, &ok, &entry.keys, coupons)
                .into_iter()
                .map(|(k, v)| (k, Lazy::Ready(v))),
        );
        order_list.push((ok, entry));
    }
    drop(matched);
    drop(orders);
    let sds: Vec<StoredDecision> = decisions
        .into_iter()
        .zip(keys)
        .map(|(d, k)| stored_decision(program, d, k))
        .collect();
    for (i, sd) in sds.iter().enumerate() {
        let c = (
            sd.decision.claim.source.clone(),
            sd.decision.claim.id.clone(),
        );
        entries.push((decision_key(p, &c), Lazy::Decision(i)));
        entries.extend(
            claim_index_keys(p, sd, coupons)
                .into_iter()
                .map(|(k, v)| (k, Lazy::Ready(v))),
        );
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let materialise = |l: Lazy| match l {
        Lazy::Ready(v) => v,
        Lazy::Decision(i) => to_value(&sds[i]),
        Lazy::Order(i) => to_value(&order_list[i].1),
    };

    // Invalidate the state first: a crash part-way leaves no state, so the
    // next run is a full one again.
    let state_k = state_key(p);
    b.kv_apply(vec![(state_k.clone(), None)])?;

    let mut changed = 0u64;
    let mut batch: Vec<(String, Option<Value>)> = Vec::new();
    let flush = |batch: &mut Vec<(String, Option<Value>)>| -> Result<(), StoreError> {
        if !batch.is_empty() {
            b.kv_apply(std::mem::take(batch))?;
        }
        Ok(())
    };
    // Merge the new entries with what is stored (both in key order).
    let mut old = b
        .kv_scan(&program_prefix(p))
        .filter(|r| r.as_ref().map_or(true, |(k, _)| *k != state_k))
        .peekable();
    let dprefix = decision_prefix(p);
    let mut new = entries.into_iter().peekable();
    loop {
        let ord = match (new.peek(), old.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((nk, _)), Some(Ok((ok, _)))) => nk.cmp(ok),
            (_, Some(Err(_))) => {
                if let Some(Err(e)) = old.next() {
                    return Err(e.into());
                }
                continue;
            }
        };
        match ord {
            std::cmp::Ordering::Less => {
                let Some((k, v)) = new.next() else { break };
                changed += u64::from(k.starts_with(&dprefix));
                batch.push((k, Some(materialise(v))));
            }
            std::cmp::Ordering::Greater => {
                if let Some(Ok((k, _))) = old.next() {
                    batch.push((k, None));
                }
            }
            std::cmp::Ordering::Equal => {
                let Some((k, v)) = new.next() else { break };
                let v = materialise(v);
                let ov = match old.next() {
                    Some(Ok((_, ov))) => ov,
                    _ => Value::Null,
                };
                if ov == v {
                    continue;
                }
                if k.starts_with(&dprefix) {
                    let o: StoredDecision = decode(&k, ov)?;
                    let mut n: StoredDecision = decode(&k, v.clone())?;
                    if same_judgement(&n.decision, &o.decision) {
                        n.decision.decided_at = o.decision.decided_at;
                        if n == o {
                            continue;
                        }
                        batch.push((k, Some(to_value(&n))));
                    } else {
                        batch.push((k, Some(v)));
                    }
                    changed += 1;
                } else {
                    batch.push((k, Some(v)));
                }
            }
        }
        if batch.len() >= CHUNK {
            flush(&mut batch)?;
        }
    }
    drop(old);
    batch.push((state_k, Some(to_value(&new_state))));
    flush(&mut batch)?;
    Ok(ProgramSummary {
        decisions_changed: changed,
        ..summary
    })
}

/// Reads through pending writes to the stored tree.
struct Overlay<'a, B: ReconBackend> {
    b: &'a B,
    pending: BTreeMap<String, Option<Value>>,
}

impl<'a, B: ReconBackend> Overlay<'a, B> {
    fn get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.b.kv_get(key),
        }
    }
    fn scan(&self, prefix: &str) -> Result<Vec<(String, Value)>, StoreError> {
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        for r in self.b.kv_scan(prefix) {
            let (k, v) = r?;
            out.insert(k, v);
        }
        for (k, v) in self
            .pending
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => out.insert(k.clone(), v.clone()),
                None => out.remove(k),
            };
        }
        Ok(out.into_iter().collect())
    }
    /// Replaces the entries `old` with `new` (deleting keys not in `new`).
    fn replace(&mut self, old: Vec<(String, Value)>, new: Vec<(String, Value)>) {
        let new_keys: BTreeSet<&String> = new.iter().map(|(k, _)| k).collect();
        for (k, _) in old {
            if !new_keys.contains(&k) {
                self.pending.insert(k, None);
            }
        }
        for (k, v) in new {
            self.pending.insert(k, Some(v));
        }
    }
}

fn incremental_run<B: ReconBackend>(
    b: &B,
    program: &ProgramConfig,
    fx: &FxTable,
    now: DateTime<Utc>,
    after: u64,
    new_state: ProgramState,
) -> Result<ProgramSummary, ReconcileError> {
    let p = program.id.as_str();
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
    // Decisions due to change with time alone.
    let tprefix = format!("{}/t/", esc(p));
    let now_ts = ts(now);
    for r in b.kv_scan(&tprefix) {
        let (k, _) = r?;
        let rest = &k[tprefix.len()..];
        let t = rest.split('/').next().unwrap_or("");
        if t > now_ts.as_str() {
            break;
        }
        if let Some(c) = tail_ref(&k) {
            touched_claims.insert(c);
        }
    }
    if touched_claims.is_empty() && touched_orders.is_empty() {
        let old = b.kv_get(&state_key(p))?;
        if old.as_ref() != Some(&to_value(&new_state)) {
            b.kv_apply(vec![(state_key(p), Some(to_value(&new_state)))])?;
        }
        return Ok(summarize(p, false, &[], 0, hi));
    }

    let mut ov = Overlay {
        b,
        pending: BTreeMap::new(),
    };
    let mut affected: BTreeSet<Key2> = touched_claims;
    let add_refs =
        |ov: &Overlay<B>, prefix: &str, set: &mut BTreeSet<Key2>| -> Result<(), StoreError> {
            for (k, _) in ov.scan(prefix)? {
                if let Some(c) = tail_ref(&k) {
                    set.insert(c);
                }
            }
            Ok(())
        };
    // The claims list of an order, as indexed (none for an unknown order).
    let entry_of = |ov: &Overlay<B>, o: &Key2| -> Result<Option<OrderEntry>, StoreError> {
        let k = primary_key(p, o);
        match ov.get(&k)? {
            Some(Value::Null) | None => Ok(None),
            Some(v) => decode(&k, v).map(Some),
        }
    };
    // Claims matched to any order indexed under `prefix` (io/ic entries).
    let add_holders =
        |ov: &Overlay<B>, prefix: &str, set: &mut BTreeSet<Key2>| -> Result<(), StoreError> {
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
                add_refs(&ov, &index_prefix(p, "qo", id), &mut affected)?;
                add_holders(&ov, &index_prefix(p, "io", id), &mut affected)?;
            }
            for c in &keys.clicks {
                add_refs(&ov, &index_prefix(p, "qc", c), &mut affected)?;
                add_holders(&ov, &index_prefix(p, "ic", c), &mut affected)?;
            }
            if coupons {
                if let Some(k) = &keys.coupon {
                    add_refs(&ov, &index_prefix(p, "qk", k), &mut affected)?;
                }
            }
        }
        let claims = old.as_ref().map(|e| e.claims.clone()).unwrap_or_default();
        affected.extend(claims.iter().cloned());
        let old_entries = old
            .map(|e| order_entries(p, o, &e, coupons))
            .unwrap_or_default();
        let new_entries = new_keys
            .map(|keys| order_entries(p, o, &OrderEntry { keys, claims }, coupons))
            .unwrap_or_default();
        ov.replace(old_entries, new_entries);
    }

    // Load the affected claims, their old decisions and candidate orders.
    let mut claims: BTreeMap<Key2, ClaimInput> = BTreeMap::new();
    let mut olds: BTreeMap<Key2, Option<StoredDecision>> = BTreeMap::new();
    let mut orders: BTreeMap<Key2, OrderInput> = BTreeMap::new();
    let window = Duration::hours(i64::from(program.matching.fuzzy_window_hours));
    let load_claim = |ov: &Overlay<B>,
                      c: &Key2,
                      claims: &mut BTreeMap<Key2, ClaimInput>,
                      olds: &mut BTreeMap<Key2, Option<StoredDecision>>,
                      orders: &mut BTreeMap<Key2, OrderInput>|
     -> Result<(), ReconcileError> {
        if claims.contains_key(c) {
            return Ok(());
        }
        let Some(s) = b.get_record(RecordKind::Conversion, &c.0, &c.1)? else {
            return Ok(());
        };
        let ci = as_claim(s, &c.0)?;
        let keys = claim_keys(&ci.claim);
        let dk = decision_key(p, c);
        let old: Option<StoredDecision> = match ov.get(&dk)? {
            Some(v) => Some(decode(&dk, v)?),
            None => None,
        };
        // Candidate orders under every key the claim could match by.
        let mut cands: BTreeSet<Key2> = BTreeSet::new();
        if let Some(oid) = &keys.oid {
            add_refs(ov, &index_prefix(p, "io", oid), &mut cands)?;
        }
        if let Some(click) = &keys.click {
            add_refs(ov, &index_prefix(p, "ic", click), &mut cands)?;
        }
        if coupons {
            if let Some(k) = &keys.coupon {
                for (key, v) in ov.scan(&index_prefix(p, "ik", k))? {
                    let created: DateTime<Utc> = decode(&key, v)?;
                    if (created - ci.claim.occurred_at).abs() <= window {
                        if let Some(r) = tail_ref(&key) {
                            cands.insert(r);
                        }
                    }
                }
            }
        }
        for o in cands {
            if orders.contains_key(&o) {
                continue;
            }
            if let Some(s) = b.get_record(RecordKind::Order, &o.0, &o.1)? {
                orders.insert(o.clone(), as_order(s, &o.0)?);
            }
        }
        claims.insert(c.clone(), ci);
        olds.insert(c.clone(), old);
        Ok(())
    };
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
    for old in olds.values().flatten() {
        if let Some(o) = &old.decision.order {
            contest_orders.insert((o.source.clone(), o.id.clone()));
        }
    }
    // Every claim sharing one of those orders joins the judgement.
    let mut mates: BTreeSet<Key2> = BTreeSet::new();
    for o in &contest_orders {
        if let Some(e) = entry_of(&ov, o)? {
            mates.extend(e.claims);
        }
    }
    for c in &mates {
        load_claim(&ov, c, &mut claims, &mut olds, &mut orders)?;
    }

    let claim_list: Vec<ClaimInput> = claims.into_values().collect();
    let order_list: Vec<OrderInput> = orders.into_values().collect();
    let decisions = engine::decide(program, &claim_list, &order_list, fx, now);
    let mut changed = 0u64;
    let mut moves: Vec<(Key2, Option<Key2>, Option<Key2>)> = Vec::new();
    for (d, ci) in decisions.iter().zip(claim_list.iter()) {
        let c = (d.claim.source.clone(), d.claim.id.clone());
        debug_assert_eq!(c, (ci.claim.source.clone(), ci.claim.external_id.clone()));
        let old = olds.remove(&c).flatten();
        let mut sd = stored_decision(program, d.clone(), claim_keys(&ci.claim));
        if let Some(o) = &old {
            if same_judgement(&sd.decision, &o.decision) {
                sd.decision.decided_at = o.decision.decided_at;
            }
            if sd == *o {
                continue;
            }
        }
        changed += 1;
        let old_order = old
            .as_ref()
            .and_then(|o| o.decision.order.as_ref())
            .map(|r| (r.source.clone(), r.id.clone()));
        let new_order = sd
            .decision
            .order
            .as_ref()
            .map(|r| (r.source.clone(), r.id.clone()));
        if old_order != new_order {
            moves.push((c.clone(), old_order, new_order));
        }
        let old_entries = old
            .map(|o| claim_entries(p, &o, coupons))
            .unwrap_or_default();
        ov.replace(old_entries, claim_entries(p, &sd, coupons));
    }
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
            ov.pending.insert(primary_key(p, &o), Some(to_value(&e)));
        }
    }
    // Drop writes that change nothing, then apply atomically with the state.
    let mut batch = Vec::with_capacity(ov.pending.len() + 1);
    for (k, v) in std::mem::take(&mut ov.pending) {
        let cur = b.kv_get(&k)?;
        if cur != v {
            batch.push((k, v));
        }
    }
    batch.push((state_key(p), Some(to_value(&new_state))));
    b.kv_apply(batch)?;
    Ok(summarize(p, false, &decisions, changed, hi))
}

/// Decodes every stored decision of a program, in claim key order.
pub fn load_stored_decisions<B: ReconBackend>(
    b: &B,
    program: &str,
) -> Result<Vec<Decision>, StoreError> {
    let mut out = Vec::new();
    for r in b.kv_scan(&decision_prefix(program)) {
        let (k, v) = r?;
        let sd: StoredDecision = decode(&k, v)?;
        out.push(sd.decision);
    }
    Ok(out)
}
