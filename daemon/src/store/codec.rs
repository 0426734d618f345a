//! Byte formats of stored values. Every value starts with a format version
//! byte so a later format can be read next to this one; a value with an
//! unknown version or a bad body is reported (with its tree and key, by the
//! caller), never skipped.
//!
//! | value | layout |
//! |---|---|
//! | record | `02` · revision u32 BE · seq u64 BE · first seen i64 µs BE · changed at i64 µs BE · binary record ([`super::binrec`]) |
//! | revision | `02` · superseded at i64 µs BE · binary record |
//! | change-log page | `01` · then per change: kind u8 · source length u16 BE · source · key length u32 BE · key |
//! | JSON (checkpoints, runs, domain trees) | `01` · JSON |
//!
//! Format `01` records and revisions (the same header with a JSON body, from
//! schema 1 stores) are still read; the schema-2 migration rewrites them as
//! `02`. The binary body is deterministic, so "unchanged" is a byte
//! comparison of bodies.

use super::Stored;
use chrono::{DateTime, Utc};
use plugin_api::protocol::{Record, RecordKind};

/// Format version of JSON values, change-log pages and old records.
pub const V1: u8 = 1;
/// Format version of records and revisions written today (binary body).
pub const V2: u8 = 2;
/// Bytes before the body of a stored record.
pub const HEADER: usize = 1 + 4 + 8 + 8 + 8;

/// The fixed part of a stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredHeader {
    /// Revision number.
    pub revision: u32,
    /// Change sequence.
    pub seq: u64,
    /// First seen, µs since the epoch.
    pub first_seen_us: i64,
    /// Changed at, µs since the epoch.
    pub changed_at_us: i64,
}

/// The canonical (binary, format 2) body of a record.
pub fn encode_record_body(r: &Record) -> Vec<u8> {
    let mut v = Vec::with_capacity(160);
    super::binrec::encode(r, &mut v);
    v
}

/// Decodes a record body of format `version`.
fn decode_body(version: u8, body: &[u8]) -> Result<Record, String> {
    if version == V1 {
        serde_json::from_slice(body).map_err(|e| format!("bad record JSON: {e}"))
    } else {
        super::binrec::decode(body).map_err(|e| format!("bad record: {e}"))
    }
}

/// Builds a stored record value.
pub fn encode_stored(
    revision: u32,
    seq: u64,
    first_us: i64,
    changed_us: i64,
    body: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + body.len());
    v.resize(HEADER, 0);
    put_header(&mut v, revision, seq, first_us, changed_us);
    v.extend_from_slice(body);
    v
}

/// Writes a format-2 header over the first [`HEADER`] bytes of `v` (a
/// buffer whose body was encoded after a zeroed header).
pub fn put_header(v: &mut [u8], revision: u32, seq: u64, first_us: i64, changed_us: i64) {
    v[0] = V2;
    v[1..5].copy_from_slice(&revision.to_be_bytes());
    v[5..13].copy_from_slice(&seq.to_be_bytes());
    v[13..21].copy_from_slice(&first_us.to_be_bytes());
    v[21..29].copy_from_slice(&changed_us.to_be_bytes());
}

fn be<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// Reads the header of a stored record.
pub fn decode_header(v: &[u8]) -> Result<StoredHeader, String> {
    if v.is_empty() {
        return Err("empty value".into());
    }
    if v[0] != V1 && v[0] != V2 {
        return Err(format!(
            "unknown record format version {} (this reckon reads {V1} and {V2})",
            v[0]
        ));
    }
    if v.len() < HEADER {
        return Err(format!(
            "record value of {} bytes is shorter than its {HEADER}-byte header",
            v.len()
        ));
    }
    Ok(StoredHeader {
        revision: u32::from_be_bytes(be(&v[1..])),
        seq: u64::from_be_bytes(be(&v[5..])),
        first_seen_us: i64::from_be_bytes(be(&v[13..])),
        changed_at_us: i64::from_be_bytes(be(&v[21..])),
    })
}

/// The body of a stored record (call after [`decode_header`] succeeded).
pub fn body_of(v: &[u8]) -> &[u8] {
    &v[HEADER.min(v.len())..]
}

fn time(us: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| format!("timestamp {us}µs out of range"))
}

/// Decodes a whole stored record.
pub fn decode_stored(v: &[u8]) -> Result<Stored, String> {
    let h = decode_header(v)?;
    let record = decode_body(v[0], body_of(v))?;
    Ok(Stored {
        record,
        revision: h.revision,
        seq: h.seq,
        first_seen: time(h.first_seen_us)?,
        changed_at: time(h.changed_at_us)?,
    })
}

/// Builds a revision value.
pub fn encode_revision(superseded_us: i64, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + body.len());
    v.push(V2);
    v.extend_from_slice(&superseded_us.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Decodes a revision value.
pub fn decode_revision(v: &[u8]) -> Result<(DateTime<Utc>, Record), String> {
    if !matches!(v.first(), Some(&V1) | Some(&V2)) || v.len() < 9 {
        return Err("unknown revision format or truncated value".into());
    }
    let at = time(i64::from_be_bytes(be(&v[1..])))?;
    let rec = decode_body(v[0], &v[9..])?;
    Ok((at, rec))
}

fn kind_byte(k: RecordKind) -> u8 {
    match k {
        RecordKind::Spend => 1,
        RecordKind::Conversion => 2,
        RecordKind::Order => 3,
    }
}

/// Appends one change to a change-log page value (start a page with
/// `vec![V1]`).
pub fn push_change(page: &mut Vec<u8>, kind: RecordKind, source: &str, key: &str) {
    page.push(kind_byte(kind));
    page.extend_from_slice(&(source.len() as u16).to_be_bytes());
    page.extend_from_slice(source.as_bytes());
    page.extend_from_slice(&(key.len() as u32).to_be_bytes());
    page.extend_from_slice(key.as_bytes());
}

/// Decodes a change-log page value into its changes, in sequence order.
pub fn decode_change_page(v: &[u8]) -> Result<Vec<(RecordKind, String, String)>, String> {
    if v.first() != Some(&V1) {
        return Err("unknown change-log format".into());
    }
    let mut out = Vec::new();
    let mut at = 1;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
        let s = v
            .get(*at..*at + n)
            .ok_or_else(|| "truncated change-log page".to_string())?;
        *at += n;
        Ok(s)
    };
    while at < v.len() {
        let kind = match take(&mut at, 1)?[0] {
            1 => RecordKind::Spend,
            2 => RecordKind::Conversion,
            3 => RecordKind::Order,
            k => return Err(format!("unknown record kind byte {k}")),
        };
        let n = u16::from_be_bytes(be(take(&mut at, 2)?)) as usize;
        let source = String::from_utf8(take(&mut at, n)?.to_vec()).map_err(|e| e.to_string())?;
        let n = u32::from_be_bytes(be(take(&mut at, 4)?)) as usize;
        let key = String::from_utf8(take(&mut at, n)?.to_vec()).map_err(|e| e.to_string())?;
        out.push((kind, source, key));
    }
    Ok(out)
}

/// Decodes a schema-1 change-log value (one change per key); used by the
/// schema-2 migration only.
pub fn decode_change_v1(v: &[u8]) -> Result<(RecordKind, String, String), String> {
    if v.first() != Some(&V1) || v.len() < 4 {
        return Err("unknown change format or truncated value".into());
    }
    let kind = match v[1] {
        1 => RecordKind::Spend,
        2 => RecordKind::Conversion,
        3 => RecordKind::Order,
        k => return Err(format!("unknown record kind byte {k}")),
    };
    let n = u16::from_be_bytes(be(&v[2..])) as usize;
    if v.len() < 4 + n {
        return Err("truncated source".into());
    }
    let source = String::from_utf8(v[4..4 + n].to_vec()).map_err(|e| e.to_string())?;
    let key = String::from_utf8(v[4 + n..].to_vec()).map_err(|e| e.to_string())?;
    Ok((kind, source, key))
}

/// Version byte + JSON.
pub fn encode_json<T: serde::Serialize + ?Sized>(t: &T) -> Vec<u8> {
    let mut v = vec![V1];
    serde_json::to_writer(&mut v, t).expect("values always serialise");
    v
}

/// Decodes version byte + JSON.
pub fn decode_json<T: serde::de::DeserializeOwned>(v: &[u8]) -> Result<T, String> {
    match v.first() {
        None => Err("empty value".into()),
        Some(&V1) => serde_json::from_slice(&v[1..]).map_err(|e| format!("bad JSON: {e}")),
        Some(b) => Err(format!(
            "unknown value format version {b} (this reckon reads {V1})"
        )),
    }
}
