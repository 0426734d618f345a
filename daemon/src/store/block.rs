//! Record blocks (schema 3): the records of one kind and source, a few
//! kilobytes of neighbouring keys at a time, stored as one sled value.
//!
//! sled spends a few microseconds of CPU on every key it writes (a tree
//! descent, a node delta, log space, its share of node consolidation), no
//! matter how small the value. One key per record made that the whole cost
//! of an ingest. A block of ~20 records costs sled about what one record
//! did, so a fresh sync writes ~20× fewer sled keys.
//!
//! The price: changing one record rewrites its block (up to
//! [`TARGET_BYTES`] plus the record) instead of one record, and reading one
//! record reads its block. Both are bounded by the block size. Sources whose ids
//! arrive in random order pay for it: see ARCHITECTURE.md (store_ingest
//! with random ids).
//!
//! A block is keyed by the **last** record key it holds (see
//! `Store::block_key`), so the block holding key `k` is the first block
//! whose key is `>= k`: one forward seek, sled's fast direction. Keys past
//! the last block belong to the last block (it grows, and its key changes).
//!
//! Value: `01` · entry count u32 BE · per entry, in key order: key length
//! u32 BE · record key (within its source) · value length u32 BE · stored
//! record value (the [`super::codec`] record format: header + binary body).

use std::ops::Range;

/// Format version of a block value.
pub const V1: u8 = 1;

/// A block is closed when its next entry would take it past this many
/// bytes (a block always holds at least one entry). ~20 typical records.
pub const TARGET_BYTES: usize = 4096;

/// Bytes an entry takes in a block.
pub fn entry_len(key: &[u8], value: &[u8]) -> usize {
    8 + key.len() + value.len()
}

fn u32_at(v: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = v.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b) as usize)
}

/// Where an entry's key and value lie in a block value.
pub type Span = (Range<usize>, Range<usize>);

/// Where each entry's key and value lie in a block value, in key order.
pub fn spans(v: &[u8]) -> Result<Vec<Span>, String> {
    if v.first() != Some(&V1) {
        return Err(match v.first() {
            None => "empty record block".into(),
            Some(b) => format!("unknown record block format {b} (this reckon reads {V1})"),
        });
    }
    let truncated = || "truncated record block".to_string();
    let n = u32_at(v, 1).ok_or_else(truncated)?;
    let mut out = Vec::with_capacity(n.min(v.len() / 8));
    let mut at = 5;
    for _ in 0..n {
        let kl = u32_at(v, at).ok_or_else(truncated)?;
        let key = at + 4..at + 4 + kl;
        let vl = u32_at(v, key.end).ok_or_else(truncated)?;
        let value = key.end + 4..key.end + 4 + vl;
        if value.end > v.len() {
            return Err(truncated());
        }
        if let Some((prev, _)) = out.last() {
            let prev: &Range<usize> = prev;
            if v[prev.clone()] >= v[key.clone()] {
                return Err("record block keys out of order".into());
            }
        }
        at = value.end;
        out.push((key, value));
    }
    if at != v.len() {
        return Err(format!(
            "{} bytes after the last entry of a record block",
            v.len() - at
        ));
    }
    Ok(out)
}

/// The stored value of `key` in a block, if it holds it.
pub fn find<'a>(v: &'a [u8], key: &[u8]) -> Result<Option<&'a [u8]>, String> {
    let spans = spans(v)?;
    Ok(spans
        .binary_search_by(|(k, _)| v[k.clone()].cmp(key))
        .ok()
        .map(|i| &v[spans[i].1.clone()]))
}

/// Encodes entries (in key order) as one block value.
pub fn encode<'a>(entries: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::with_capacity(TARGET_BYTES + 512);
    out.push(V1);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (k, v) in entries {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// Cuts entries of the given encoded sizes (in key order) into blocks:
/// filled up to `target` bytes in order. Unless `tail` (the entries run to
/// the end of their source, where the next page appends after them), a last
/// block under half the target is evened out with the one before it, so a
/// block split by an insert in the middle leaves two half-full blocks rather
/// than a full one and a sliver.
pub fn split(sizes: &[usize], target: usize, tail: bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, &s) in sizes.iter().enumerate() {
        if i > start && bytes + s > target {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += s;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    if !tail && out.len() >= 2 && bytes < target / 2 {
        // The cut of the last two blocks that is closest to even and keeps
        // both within the target (or single entries).
        let both = out[out.len() - 2].start..sizes.len();
        let total: usize = sizes[both.clone()].iter().sum();
        let fits = |r: Range<usize>, bytes: usize| bytes <= target || r.len() == 1;
        let mut left = 0;
        let mut best: Option<(usize, usize)> = None;
        for cut in both.start + 1..both.end {
            left += sizes[cut - 1];
            let right = total - left;
            if fits(both.start..cut, left) && fits(cut..both.end, right) {
                let skew = left.abs_diff(right);
                if best.is_none_or(|(_, s)| skew < s) {
                    best = Some((cut, skew));
                }
            }
        }
        if let Some((cut, _)) = best {
            out.truncate(out.len() - 2);
            out.push(both.start..cut);
            out.push(cut..both.end);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_read_back() {
        let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..5)
            .map(|i| (format!("k{i}").into_bytes(), vec![i as u8; i * 3]))
            .collect();
        let v = encode(entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
        let spans = spans(&v).unwrap();
        assert_eq!(spans.len(), 5);
        for ((k, val), (ks, vs)) in entries.iter().zip(&spans) {
            assert_eq!(&v[ks.clone()], k.as_slice());
            assert_eq!(&v[vs.clone()], val.as_slice());
        }
        assert_eq!(find(&v, b"k3").unwrap(), Some(&[3u8; 9][..]));
        assert_eq!(find(&v, b"k0").unwrap(), Some(&[][..]));
        assert_eq!(find(&v, b"k9").unwrap(), None);
        assert_eq!(find(&v, b"a").unwrap(), None);
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let v = encode([(&b"a"[..], &b"xyz"[..]), (&b"b"[..], &b"1"[..])].into_iter());
        for cut in 0..v.len() {
            assert!(spans(&v[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = v.clone();
        longer.push(0);
        assert!(spans(&longer).is_err());
        let mut bad = v.clone();
        bad[0] = 7;
        assert_eq!(
            spans(&bad).unwrap_err(),
            "unknown record block format 7 (this reckon reads 1)"
        );
        let unordered = encode([(&b"b"[..], &b""[..]), (&b"a"[..], &b""[..])].into_iter());
        assert!(spans(&unordered).is_err());
        // A huge length does not allocate or overflow.
        let mut huge = vec![V1];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(spans(&huge).is_err());
    }

    fn check(sizes: &[usize], tail: bool) -> Vec<Range<usize>> {
        let small = split(sizes, 1000, tail);
        for b in &small {
            let bytes: usize = sizes[b.clone()].iter().sum();
            assert!(bytes <= 1000 || b.len() == 1, "{b:?} {bytes}");
        }
        let blocks = split(sizes, TARGET_BYTES, tail);
        // Contiguous, non-empty, covering everything.
        let mut next = 0;
        for b in &blocks {
            assert_eq!(b.start, next);
            assert!(b.end > b.start);
            next = b.end;
            let bytes: usize = sizes[b.clone()].iter().sum();
            assert!(bytes <= TARGET_BYTES || b.len() == 1, "{b:?} {bytes}");
        }
        assert_eq!(next, sizes.len());
        blocks
    }

    #[test]
    fn split_fills_blocks_and_evens_out_a_sliver() {
        assert!(check(&[], false).is_empty());
        assert_eq!(check(&[100; 10], false), vec![0..10]);
        // 41 × 100 B: 40 fit, one is left over.
        assert_eq!(check(&[100; 41], true), vec![0..40, 40..41]);
        let even = check(&[100; 41], false);
        assert_eq!(even.len(), 2);
        assert!(even.iter().all(|b| b.len() >= 20), "{even:?}");
        // An entry larger than the target stands alone.
        assert_eq!(check(&[10_000, 10, 10], true), vec![0..1, 1..3]);
        assert_eq!(check(&[10, 10_000], false), vec![0..1, 1..2]);
        for n in 1..200 {
            let sizes: Vec<usize> = (0..n).map(|i| 50 + (i * 37) % 400).collect();
            check(&sizes, false);
            check(&sizes, true);
        }
    }
}
