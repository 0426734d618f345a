//! A radix-partitioned hash join on normalised ids: every probe row (a claim)
//! is matched to the first build row (an order) whose id normalises to the
//! same bytes. This is the bulk form of the engine's order-id rule; the
//! incremental path keeps [`super::engine::OrderIndex`] for single lookups.
//!
//! ## How it works
//! 1. **Scatter** (each thread takes a contiguous slice of rows). Each id is
//!    normalised once ([`super::engine::normalize_into`]: trim, case-fold;
//!    ASCII ids up to 16 bytes are case-folded 8 bytes at a time), hashed
//!    once, and written with the caller's small `Copy` payload into one of
//!    `2^k` partitions chosen by the hash's top bits. Keys of up to 16 bytes live inline in the row;
//!    longer ones go to the thread's byte arena and the row holds their
//!    offset. Partitions are sized so that one partition's build rows and
//!    its bucket array fit in L2 (about [`BUILD_ROWS_PER_PARTITION`] rows).
//! 2. **Build and probe** (threads take partitions from a shared counter).
//!    Per partition the build rows are laid out by bucket (a counting sort
//!    on the hash's low bits, stable, so a bucket keeps row order), then
//!    each probe row scans its bucket and takes the first row with equal
//!    hash, length and bytes. Every access in this phase hits the
//!    partition's cache-resident rows: no pointer to the original ids and no
//!    random access to other columns, since the payloads travel with the rows.
//!
//! ## Guarantees
//! - Equality is on the normalised bytes, never on the hash alone.
//! - **First occurrence wins**: among build rows with the same normalised
//!   id, the lowest row index matches (rows are scattered in row order and
//!   threads' slices are concatenated in order). Callers encode priority in
//!   the row order (the engine puts primary ids before alt ids).
//! - Rows whose id normalises to nothing never match.
//! - The matched pairs do not depend on the thread count. Which accumulator
//!   sees a pair and in what order does, so callers fold with commutative
//!   operations or place results by row index.
//!
//! What it is not: a general join. One key type (ids that normalise like
//! order ids), equality only, at most one build row per probe row.

use super::engine::normalize_into;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Target number of build rows per partition: 8192 rows × 32 bytes plus the
/// bucket array is about 300 KiB, well inside a 1 MiB L2 next to the probe
/// stream.
pub const BUILD_ROWS_PER_PARTITION: usize = 8192;

/// The thread count a caller without an opinion should use for `rows` rows
/// in total: one below 200k rows (spawning costs more than it saves), else
/// the machine's parallelism, at most 4.
pub fn default_threads(rows: usize) -> usize {
    if rows < 200_000 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    }
}

/// Matches each probe row to the first build row with the same normalised id
/// and calls `on_match(acc, probe_payload, build_payload)` once per matched
/// probe row, on one of `threads` per-thread accumulators (returned, one per
/// thread; `threads` 0 counts as 1).
///
/// `build(i)` / `probe(i)` give row `i`'s raw id and payload, or `None` to
/// leave the row out. Each is called once per row, from several threads.
pub fn join_first<'a, 'b, B, P, A, FB, FP, M>(
    threads: usize,
    build_len: usize,
    build: FB,
    probe_len: usize,
    probe: FP,
    on_match: M,
) -> Vec<A>
where
    B: Copy + Send + Sync,
    P: Copy + Send + Sync,
    A: Default + Send,
    FB: Fn(usize) -> Option<(&'a str, B)> + Sync,
    FP: Fn(usize) -> Option<(&'b str, P)> + Sync,
    M: Fn(&mut A, P, B) + Sync,
{
    let threads = threads.max(1);
    let parts = (build_len / BUILD_ROWS_PER_PARTITION)
        .max(1)
        .next_power_of_two();
    let slice = |len: usize, t: usize| len * t / threads..len * (t + 1) / threads;

    // 1. Scatter both sides; thread t owns slice t of each.
    let scattered: Vec<(Scattered<B>, Scattered<P>)> = on_threads(threads, |t| {
        (
            scatter(slice(build_len, t), &build, parts, t),
            scatter(slice(probe_len, t), &probe, parts, t),
        )
    });
    let (builds, probes): (Vec<Scattered<B>>, Vec<Scattered<P>>) = scattered.into_iter().unzip();

    // 2. Build and probe partition by partition.
    let next = AtomicUsize::new(0);
    on_threads(threads, |_| {
        let mut acc = A::default();
        let mut table = BucketTable::default();
        loop {
            let p = next.fetch_add(1, Ordering::Relaxed);
            if p >= parts {
                break;
            }
            table.fill(builds.iter().map(|s| s.parts[p].as_slice()));
            for side in &probes {
                for q in &side.parts[p] {
                    if let Some(b) = table.find(q, &side.arena, &builds) {
                        on_match(&mut acc, q.payload, b.payload);
                    }
                }
            }
        }
        acc
    })
}

/// Runs `f(t)` for t in 0..threads, on scoped threads when more than one.
fn on_threads<R: Send>(threads: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    if threads == 1 {
        return vec![f(0)];
    }
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || f(t))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join thread panicked"))
            .collect()
    })
}

/// One normalised id with its payload. `words` holds the key bytes
/// zero-padded when `len <= 16`, else (offset in the owning thread's arena,
/// that thread's index).
#[derive(Clone, Copy)]
struct Row<T> {
    words: [u64; 2],
    hash: u32,
    len: u32,
    payload: T,
}

/// One thread's rows of one side, by partition, and its long keys.
struct Scattered<T> {
    parts: Vec<Vec<Row<T>>>,
    arena: Vec<u8>,
}

fn scatter<'a, T: Copy>(
    rows: std::ops::Range<usize>,
    row: &impl Fn(usize) -> Option<(&'a str, T)>,
    parts: usize,
    thread: usize,
) -> Scattered<T> {
    let expect = rows.len() / parts;
    let mut out = Scattered {
        parts: (0..parts)
            .map(|_| Vec::with_capacity(expect + expect / 8 + 16))
            .collect(),
        arena: Vec::new(),
    };
    let mut scratch = String::new();
    for i in rows {
        let Some((id, payload)) = row(i) else {
            continue;
        };
        let Some(key) = Key::new(id, &mut scratch, &mut out.arena, thread) else {
            continue;
        };
        // Top bits of the hash pick the partition, low bits the bucket.
        let p = (((key.hash >> 32) * parts as u64) >> 32) as usize;
        out.parts[p].push(Row {
            words: key.words,
            hash: key.hash as u32,
            len: key.len,
            payload,
        });
    }
    out
}

struct Key {
    hash: u64,
    words: [u64; 2],
    len: u32,
}

impl Key {
    /// The normalised form of `id`, or `None` when it is empty.
    #[inline]
    fn new(id: &str, scratch: &mut String, arena: &mut Vec<u8>, thread: usize) -> Option<Key> {
        let t = id.trim();
        if t.len() <= 16 && t.is_ascii() {
            if t.is_empty() {
                return None;
            }
            let [w0, w1] = load_words(t.as_bytes());
            let words = [ascii_lower(w0), ascii_lower(w1)];
            return Some(Key::short(words, t.len()));
        }
        normalize_into(id, scratch);
        let s = scratch.as_bytes();
        match s.len() {
            0 => None,
            1..=16 => Some(Key::short(load_words(s), s.len())),
            len => {
                let offset = arena.len() as u64;
                arena.extend_from_slice(s);
                Some(Key {
                    hash: hash_long(s),
                    words: [offset, thread as u64],
                    len: len as u32,
                })
            }
        }
    }

    #[inline]
    fn short(words: [u64; 2], len: usize) -> Key {
        Key {
            hash: hash_short(words, len),
            words,
            len: len as u32,
        }
    }
}

/// Up to 16 bytes as two little-endian words, zero-padded.
#[inline]
fn load_words(b: &[u8]) -> [u64; 2] {
    let mut buf = [0u8; 16];
    buf[..b.len()].copy_from_slice(b);
    let (lo, hi) = buf.split_at(8);
    [
        u64::from_le_bytes(lo.try_into().expect("8 bytes")),
        u64::from_le_bytes(hi.try_into().expect("8 bytes")),
    ]
}

/// `to_ascii_lowercase` on 8 ASCII bytes at once (every byte < 0x80).
#[inline]
fn ascii_lower(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    // A byte b < 0x80 plus 0x80 − c has its high bit set iff b >= c, and
    // never carries into the next byte.
    let at_least_a = w.wrapping_add(ONES * (0x80 - u64::from(b'A')));
    let above_z = w.wrapping_add(ONES * (0x80 - u64::from(b'Z') - 1));
    let upper = at_least_a & !above_z & HIGH;
    w | (upper >> 2)
}

const K: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// The folded 64 × 64 → 128-bit multiply (as in foldhash/wyhash).
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

#[inline]
fn hash_short(w: [u64; 2], len: usize) -> u64 {
    fold(fold(w[0] ^ K[0], w[1] ^ K[1]) ^ len as u64, K[2])
}

fn hash_long(s: &[u8]) -> u64 {
    let mut h = K[3] ^ s.len() as u64;
    for chunk in s.chunks(16) {
        let w = load_words(chunk);
        h = fold(w[0] ^ K[0] ^ h, w[1] ^ K[1]);
    }
    fold(h, K[2])
}

/// One partition's build rows laid out by bucket: bucket b's rows are
/// `rows[starts[b]..starts[b + 1]]`, in row order.
struct BucketTable<T> {
    starts: Vec<u32>,
    rows: Vec<Row<T>>,
    mask: u32,
}

impl<T> Default for BucketTable<T> {
    fn default() -> Self {
        BucketTable {
            starts: Vec::new(),
            rows: Vec::new(),
            mask: 0,
        }
    }
}

impl<T: Copy> BucketTable<T> {
    /// Lays out the rows of `pieces` (concatenated in order) by bucket.
    fn fill<'r>(&mut self, pieces: impl Iterator<Item = &'r [Row<T>]> + Clone)
    where
        T: 'r,
    {
        let n: usize = pieces.clone().map(<[Row<T>]>::len).sum();
        let buckets = n.max(1).next_power_of_two();
        self.mask = (buckets - 1) as u32;
        self.starts.clear();
        self.starts.resize(buckets + 1, 0);
        for piece in pieces.clone() {
            for r in piece {
                self.starts[(r.hash & self.mask) as usize + 1] += 1;
            }
        }
        for b in 0..buckets {
            self.starts[b + 1] += self.starts[b];
        }
        let Some(first) = pieces.clone().find_map(|p| p.first().copied()) else {
            self.rows.clear();
            return;
        };
        self.rows.clear();
        self.rows.resize(n, first);
        // `starts[b]` doubles as bucket b's write cursor, then is restored.
        for piece in pieces {
            for r in piece {
                let b = (r.hash & self.mask) as usize;
                let at = self.starts[b] as usize;
                self.rows[at] = *r;
                self.starts[b] += 1;
            }
        }
        for b in (1..=buckets).rev() {
            self.starts[b] = self.starts[b - 1];
        }
        self.starts[0] = 0;
    }

    /// The first build row equal to `q` (whose long key, if any, is in
    /// `q_arena`); `builds` hold the build rows' arenas.
    #[inline]
    fn find<Q>(&self, q: &Row<Q>, q_arena: &[u8], builds: &[Scattered<T>]) -> Option<&Row<T>> {
        let b = (q.hash & self.mask) as usize;
        let bucket = self
            .rows
            .get(self.starts[b] as usize..self.starts[b + 1] as usize)?;
        bucket.iter().find(|r| {
            r.hash == q.hash
                && r.len == q.len
                && if q.len <= 16 {
                    r.words == q.words
                } else {
                    long_key(&builds[r.words[1] as usize].arena, r.words[0], r.len)
                        == long_key(q_arena, q.words[0], q.len)
                }
        })
    }
}

#[inline]
fn long_key(arena: &[u8], offset: u64, len: u32) -> &[u8] {
    &arena[offset as usize..offset as usize + len as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::engine::normalize_order_id;
    use crate::reconcile::synth::SplitMix64;
    use std::collections::HashMap;

    /// Ids that collide only after normalisation, plus awkward ones.
    fn random_id(rng: &mut SplitMix64, pool: u64) -> String {
        let n = rng.below(pool);
        let base = match n % 7 {
            0 => format!("ORD-{n:08}"),
            1 => format!("Ünïcode-ÖRD-{n}"),
            2 => format!("a-very-long-order-identifier-{n:012}"),
            3 => format!("A-VERY-LONG-ORDER-IDENTIFIER-{n:012}"),
            4 => format!("\u{212A}elvin-{n}"), // KELVIN SIGN lowercases to 'k'
            5 => format!("kelvin-{n}"),
            _ => format!("{n}"),
        };
        match rng.below(12) {
            0 => String::new(),
            1 => " \t\u{b} ".to_owned(),
            2 => format!("  {base}\n"),
            3 => base.to_uppercase(),
            4 => base.to_lowercase(),
            5 => format!("\u{3000}{base}"), // ideographic space trims
            _ => base,
        }
    }

    /// The reference: a HashMap of normalised ids, first occurrence wins.
    fn naive(build: &[String], probe: &[String]) -> Vec<(u32, u32)> {
        let mut map: HashMap<String, u32> = HashMap::new();
        for (i, id) in build.iter().enumerate() {
            if let Some(k) = normalize_order_id(id) {
                map.entry(k).or_insert(i as u32);
            }
        }
        let mut out: Vec<(u32, u32)> = probe
            .iter()
            .enumerate()
            .filter_map(|(j, id)| {
                let k = normalize_order_id(id)?;
                map.get(&k).map(|&i| (j as u32, i))
            })
            .collect();
        out.sort_unstable();
        out
    }

    fn joined(threads: usize, build: &[String], probe: &[String]) -> Vec<(u32, u32)> {
        let accs: Vec<Vec<(u32, u32)>> = join_first(
            threads,
            build.len(),
            |i| Some((build[i].as_str(), i as u32)),
            probe.len(),
            |j| Some((probe[j].as_str(), j as u32)),
            |acc: &mut Vec<(u32, u32)>, j, i| acc.push((j, i)),
        );
        let mut out: Vec<(u32, u32)> = accs.into_iter().flatten().collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn join_matches_naive_hashmap_join_for_any_thread_count() {
        for (seed, n, pool) in [(1, 0, 1), (2, 1, 1), (3, 500, 50), (4, 30_000, 20_000)] {
            let mut rng = SplitMix64(seed);
            let build: Vec<String> = (0..n).map(|_| random_id(&mut rng, pool)).collect();
            let probe: Vec<String> = (0..n + 7).map(|_| random_id(&mut rng, pool)).collect();
            let want = naive(&build, &probe);
            if n >= 500 {
                assert!(want.len() > n / 3, "the data must produce matches");
            }
            for threads in [0, 1, 2, 3, 4] {
                assert_eq!(
                    joined(threads, &build, &probe),
                    want,
                    "seed {seed}, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn join_takes_the_first_of_duplicate_build_ids_across_thread_slices() {
        // The same id at rows 0, 1 and in the second thread's slice.
        let build: Vec<String> = ["x-1", " X-1", "y", "Y ", "x-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let probe = vec!["x-1".to_owned(), "y".to_owned(), "z".to_owned()];
        for threads in [1, 2, 5] {
            assert_eq!(joined(threads, &build, &probe), vec![(0, 0), (1, 2)]);
        }
    }

    #[test]
    fn join_compares_bytes_not_just_hashes_for_long_and_short_ids() {
        // Same first 16 bytes, different tails; same length, different case
        // of non-ASCII letters.
        let build: Vec<String> = [
            "0123456789abcdef-tail-one",
            "0123456789abcdef-tail-two",
            "ÄBC",
            "0123456789abcdef",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let probe: Vec<String> = [
            "0123456789ABCDEF-TAIL-TWO",
            "äbc",
            "0123456789ABCDEF",
            "0123456789abcdef-tail-thre",
            "0123456789abcde",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(naive(&build, &probe), vec![(0, 1), (1, 2), (2, 3)]);
        assert_eq!(joined(2, &build, &probe), naive(&build, &probe));
    }

    #[test]
    fn join_skips_rows_the_callers_leave_out_and_carries_payloads() {
        let build = ["a", "b", "c"];
        let probe = ["c", "b", "a", "a"];
        let accs: Vec<i64> = join_first(
            2,
            build.len(),
            |i| (i != 1).then(|| (build[i], 10 * i as i64)),
            probe.len(),
            |j| Some((probe[j], j as i64)),
            |acc: &mut i64, j, i| *acc += 100 * j + i,
        );
        // c: probe 0 → build 2 (20); a: probes 2, 3 → build 0.
        assert_eq!(accs.iter().sum::<i64>(), 20 + 200 + 300);
    }

    #[test]
    fn equal_hashes_with_different_bytes_do_not_match() {
        let row = |words: [u64; 2], len: u32, payload: u32| Row {
            words,
            hash: 7,
            len,
            payload,
        };
        // Short keys: same hash and length, different bytes.
        let short = [row([1, 0], 8, 0), row([2, 0], 8, 1)];
        // Long keys (arena offsets 0 and 20 of thread 0): same hash and
        // length, bytes differ in the last byte only.
        let arena = b"abcdefghijklmnopqrsXabcdefghijklmnopqrsY".to_vec();
        let long = [row([0, 0], 20, 2), row([20, 0], 20, 3)];
        let builds = vec![Scattered {
            parts: vec![],
            arena: arena.clone(),
        }];
        let mut table = BucketTable::default();
        table.fill([&short[..], &long[..]].into_iter());
        let found =
            |q: Row<u32>, q_arena: &[u8]| table.find(&q, q_arena, &builds).map(|r| r.payload);
        assert_eq!(found(row([2, 0], 8, 9), &[]), Some(1));
        assert_eq!(found(row([3, 0], 8, 9), &[]), None);
        assert_eq!(found(row([2, 0], 7, 9), &[]), None);
        let q_arena = b"abcdefghijklmnopqrsYabcdefghijklmnopqrsZ";
        assert_eq!(found(row([0, 0], 20, 9), q_arena), Some(3));
        assert_eq!(found(row([20, 0], 20, 9), q_arena), None);
    }

    #[test]
    fn ascii_fast_path_agrees_with_normalize_into() {
        let mut scratch = String::new();
        let mut arena = Vec::new();
        for b in 0u8..0x80 {
            let id = format!("{}x{}", b as char, b as char);
            let fast = Key::new(&id, &mut scratch, &mut arena, 0);
            let want = normalize_order_id(&id);
            match (fast, want) {
                (None, None) => {}
                (Some(k), Some(w)) => {
                    assert_eq!(k.words, load_words(w.as_bytes()), "byte {b:#x}");
                    assert_eq!(k.len as usize, w.len());
                }
                (k, w) => panic!("byte {b:#x}: {:?} vs {w:?}", k.map(|k| k.len)),
            }
        }
    }
}
