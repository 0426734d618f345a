//! A full run's claims and orders kept encoded (the store's binary record
//! format, [`crate::store::binrec`]) in a few large buffers, and decoded one
//! at a time when the engine asks ([`Inputs`]).
//!
//! A decoded `Conversion` takes about 700 bytes of memory (its struct plus
//! a heap allocation per string); encoded it takes about 150. A full run
//! over a million claims and orders would otherwise hold 1.2 GB of inputs.
//! The price is decoding each record a few times (matching, judging, and
//! as a contest winner), about a second per million records.

use super::engine::{ClaimInput, Inputs, OrderInput};
use crate::store::binrec;
use plugin_api::protocol::Record;
use std::borrow::Cow;
use std::marker::PhantomData;

/// Bytes per buffer: records are appended to the current buffer and never
/// straddle two, so growing never copies what is already packed (a doubling
/// `Vec` would briefly hold the old and the new buffer).
const CHUNK: usize = 16 << 20;

/// Records of one kind, in the order pushed, each with its revision.
pub struct Packed<T> {
    chunks: Vec<Vec<u8>>,
    /// (chunk, start, end) of each record.
    spans: Vec<(u32, u32, u32)>,
    revisions: Vec<u32>,
    kind: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Packed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packed")
            .field("records", &self.spans.len())
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl<T> Packed<T> {
    /// Empty, with room for `records` records.
    pub fn with_capacity(records: usize) -> Self {
        Packed {
            chunks: Vec::new(),
            spans: Vec::with_capacity(records),
            revisions: Vec::with_capacity(records),
            kind: PhantomData,
        }
    }

    /// Appends `record` at `revision`.
    pub fn push(&mut self, record: &Record, revision: u32) {
        let fits = |c: &Vec<u8>| c.capacity() - c.len() >= 1024;
        if !self.chunks.last().is_some_and(fits) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let ci = self.chunks.len() - 1;
        let chunk = &mut self.chunks[ci];
        let (start, room) = (chunk.len(), chunk.capacity());
        binrec::encode(record, chunk);
        if chunk.len() > room && start > 0 {
            // It did not fit: move it to a chunk of its own size or more.
            let mut next = Vec::with_capacity(CHUNK.max(chunk.len() - start));
            next.extend_from_slice(&chunk[start..]);
            chunk.truncate(start);
            self.chunks.push(next);
            return self.note(self.chunks.len() - 1, 0, revision);
        }
        self.note(ci, start, revision);
    }

    fn note(&mut self, ci: usize, start: usize, revision: u32) {
        let end = self.chunks[ci].len();
        self.spans.push((ci as u32, start as u32, end as u32));
        self.revisions.push(revision);
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn bytes(&self, i: usize) -> &[u8] {
        let (c, s, e) = self.spans[i];
        &self.chunks[c as usize][s as usize..e as usize]
    }

    fn record(&self, i: usize) -> Record {
        // These bytes were encoded by `push` in this process from a valid
        // record: a failure is a bug in the codec, not bad input.
        binrec::decode(self.bytes(i))
            .unwrap_or_else(|e| panic!("packed record {i} does not decode: {e}"))
    }
}

impl Packed<ClaimInput> {
    /// Claim `i`'s (source, external id), without decoding the rest.
    pub fn key(&self, i: usize) -> (&str, &str) {
        binrec::conversion_key(self.bytes(i))
            .unwrap_or_else(|e| panic!("packed claim {i} does not decode: {e}"))
    }
}

/// A record kind a [`Packed`] can hold.
pub trait Unpack: Clone + Sized {
    /// `record` at `revision` as this kind, or `None` if it is another.
    fn unpack(record: Record, revision: u32) -> Option<Self>;
}

impl Unpack for ClaimInput {
    fn unpack(record: Record, revision: u32) -> Option<Self> {
        match record {
            Record::Conversion(claim) => Some(ClaimInput { claim, revision }),
            _ => None,
        }
    }
}

impl Unpack for OrderInput {
    fn unpack(record: Record, revision: u32) -> Option<Self> {
        match record {
            Record::Order(order) => Some(OrderInput { order, revision }),
            _ => None,
        }
    }
}

impl<T: Unpack> Inputs<T> for Packed<T> {
    fn len(&self) -> usize {
        self.spans.len()
    }
    fn get(&self, i: usize) -> Cow<'_, T> {
        let record = self.record(i);
        let kind = record.kind();
        match T::unpack(record, self.revisions[i]) {
            Some(t) => Cow::Owned(t),
            None => panic!("packed record {i} is a {kind:?} record"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::synth::{generate, SynthSpec};

    #[test]
    fn packed_records_read_back_equal_and_span_chunks() {
        let data = generate(&SynthSpec::benchmark(3000, 7));
        let mut claims: Packed<ClaimInput> = Packed::with_capacity(data.claims.len());
        for (i, c) in data.claims.iter().enumerate() {
            claims.push(&Record::Conversion(c.clone()), i as u32 + 1);
        }
        assert_eq!(Inputs::len(&claims), data.claims.len());
        for (i, c) in data.claims.iter().enumerate() {
            let got = claims.get(i);
            assert_eq!(got.claim, *c);
            assert_eq!(got.revision, i as u32 + 1);
            assert_eq!(claims.key(i), (&c.source[..], &c.external_id[..]));
        }
        let mut orders: Packed<OrderInput> = Packed::with_capacity(0);
        for o in &data.orders {
            orders.push(&Record::Order(o.clone()), 1);
        }
        assert_eq!(orders.get(17).order, data.orders[17]);
    }

    #[test]
    fn a_record_larger_than_the_rest_of_a_chunk_moves_to_the_next() {
        let data = generate(&SynthSpec::benchmark(10, 1));
        let mut big = data.claims[0].clone();
        big.partner_name = Some("x".repeat(CHUNK - 100));
        let mut p: Packed<ClaimInput> = Packed::with_capacity(3);
        p.push(&Record::Conversion(data.claims[1].clone()), 1);
        p.push(&Record::Conversion(big.clone()), 2);
        p.push(&Record::Conversion(data.claims[2].clone()), 3);
        assert_eq!(p.get(0).claim, data.claims[1]);
        assert_eq!(p.get(1).claim, big);
        assert_eq!(p.get(2).claim, data.claims[2]);
        assert!(p.chunks.len() >= 2);
    }
}
