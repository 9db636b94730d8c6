//! The ids of the stored series, found by their keys: the lookup of every
//! put and get.
//!
//! The keys live once, in the store's table of keys by id; this index holds
//! only ids, found by 32 bits of the key's hash and checked against that
//! table. A `HashMap<Arc<str>, u32>` would cost 25 bytes a bucket (a fat
//! pointer, an id and its padding, a control byte) where this one costs 9
//! (the hash's 32 bits, an id, a control byte): some 34 MB less at a
//! million series, whose table has 2^21 buckets. It is std's map, so no
//! crate is added for it.
//!
//! 32 bits of hash collide often enough to matter (some 116 pairs among a
//! million keys): a key whose 32 bits are taken by another key when it
//! comes in goes to a second, ordinary map of keys, looked at only when the
//! first one does not answer and it is not empty.
//!
//! The hash is [`KeyHasher`]'s, not std's SipHash: every put hashes its
//! key, and SipHash took 195 instructions of a put's 1,780 for a 20-byte
//! key.

use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Arc;

/// A series' id: an index into the store's tables. 32 bits hold four
/// billion series, far more than fit in memory (each costs some 200
/// bytes), and halve the order's and the index's entries.
pub type Id = u32;

/// See the module's documentation.
#[derive(Debug, Default)]
pub struct KeyIndex {
    /// Ids by the low 32 bits of their key's hash.
    by_hash: HashMap<u32, Id, BuildHasherDefault<Spread>>,
    /// Ids of keys that came in while another key held their 32 bits.
    collided: HashMap<Arc<str>, Id>,
    /// Keyed by random seeds: keys come from clients, who must not be able
    /// to aim at one bucket.
    hasher: KeyHasher,
}

/// A keyed hash of a key's bytes: 16 bytes at a time, each half XORed
/// with a random seed, multiplied into 128 bits and the halves of the
/// product folded (the construction of foldhash, hashbrown's default
/// hasher). Some 35 instructions for a 20-byte key where SipHash takes
/// 195.
///
/// Like foldhash, it resists a client who cannot see its hashes (the seeds
/// are drawn from the OS's randomness, through std's `RandomState`), not
/// one who could recover them by cryptanalysis as SipHash's design
/// prevents. The damage such a client could do is bounded here: keys made
/// to share their 32 bits go to `collided`, a SipHash map; keys made to
/// share a bucket of `by_hash` but not their 32 bits would lengthen its
/// probes.
#[derive(Debug)]
struct KeyHasher {
    seeds: [u64; 4],
}

impl Default for KeyHasher {
    fn default() -> Self {
        let random = RandomState::new();
        Self {
            seeds: [0u64, 1, 2, 3].map(|n| random.hash_one(n)),
        }
    }
}

/// The two halves of the 128-bit product of `a` and `b`, XORed: every bit
/// of either factor reaches the middle bits of the product, and the fold
/// brings those to both ends.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ (product >> 64) as u64
}

impl KeyHasher {
    #[inline]
    fn hash(&self, bytes: &[u8]) -> u64 {
        let [a, b, c, d] = self.seeds;
        let word = |eight: &[u8; 8]| u64::from_le_bytes(*eight);
        let half = |four: &[u8; 4]| u64::from(u32::from_le_bytes(*four));
        let mut acc = 0;
        // The last 16 bytes (or fewer, whole) as two words; the length,
        // mixed in at the end, tells overlapping reads apart.
        let (x, y) = match bytes.len() {
            0 => (0, 0),
            len @ 1..4 => (
                u64::from(bytes[0]) | u64::from(bytes[len / 2]) << 8 | u64::from(bytes[len - 1]) << 16,
                0,
            ),
            4..8 => match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
                (Some(first), Some(last)) => (half(first), half(last)),
                _ => (0, 0),
            },
            _ => {
                let (blocks, _) = bytes.as_chunks::<16>();
                for block in blocks {
                    let (x, y) = block.split_at(8);
                    if let (Some(x), Some(y)) = (x.first_chunk::<8>(), y.first_chunk::<8>()) {
                        acc = fold(word(x) ^ a, word(y) ^ b ^ acc);
                    }
                }
                let last = &bytes[bytes.len().saturating_sub(16)..];
                match (last.first_chunk::<8>(), last.last_chunk::<8>()) {
                    (Some(first), Some(last)) => (word(first), word(last)),
                    _ => (0, 0),
                }
            }
        };
        let acc = fold(x ^ a, y ^ b ^ acc);
        fold(acc ^ c, bytes.len() as u64 ^ d)
    }
}

/// The hash of an already random 32-bit hash: multiplied by 2^64/φ
/// (Knuth's multiplicative hashing), so that the table's control bytes,
/// taken from the top 7 bits, are spread too; it is a bijection, so no two
/// of the index's keys collide here.
#[derive(Debug, Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn write(&mut self, bytes: &[u8]) {
        // Only u32s are hashed here (`write_u32`); any other input still
        // gets a proper hash.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The key's hash, as this index files it.
#[derive(Debug, Clone, Copy)]
pub struct KeyHash(u32);

/// The key of `id` in the store's table of keys.
fn key_of(keys: &[Option<Arc<str>>], id: Id) -> Option<&str> {
    keys.get(id as usize).and_then(|k| k.as_deref())
}

impl KeyIndex {
    #[inline]
    pub fn hash(&self, key: &str) -> KeyHash {
        // The fold leaves the low bits as mixed as the high ones.
        KeyHash(self.hasher.hash(key.as_bytes()) as u32)
    }

    /// The id of `key`, if indexed; `keys` is the store's table of keys.
    #[inline]
    pub fn find(&self, keys: &[Option<Arc<str>>], key: &str, hash: KeyHash) -> Option<Id> {
        if let Some(&id) = self.by_hash.get(&hash.0) {
            if key_of(keys, id) == Some(key) {
                return Some(id);
            }
        }
        if self.collided.is_empty() {
            return None;
        }
        self.collided.get(key).copied()
    }

    /// Indexes `id` under `key`, which is not indexed yet.
    pub fn insert(&mut self, key: &Arc<str>, hash: KeyHash, id: Id) {
        match self.by_hash.entry(hash.0) {
            Entry::Vacant(slot) => {
                slot.insert(id);
            }
            Entry::Occupied(_) => {
                self.collided.insert(Arc::clone(key), id);
            }
        }
    }

    /// Takes `key` out of the index; its id, if it was indexed. `keys`
    /// must still hold it.
    pub fn remove(&mut self, keys: &[Option<Arc<str>>], key: &str, hash: KeyHash) -> Option<Id> {
        if let Entry::Occupied(slot) = self.by_hash.entry(hash.0) {
            if key_of(keys, *slot.get()) == Some(key) {
                return Some(slot.remove());
            }
        }
        self.collided.remove(key)
    }

    /// Every indexed id, in no order.
    #[cfg(test)]
    pub fn ids(&self) -> impl Iterator<Item = Id> + '_ {
        self.by_hash.values().chain(self.collided.values()).copied()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len() + self.collided.len()
    }

    /// The bytes of both maps' tables.
    pub fn bytes(&self) -> usize {
        table_bytes(self.by_hash.capacity(), BY_HASH_BUCKET) + table_bytes(self.collided.capacity(), COLLIDED_BUCKET)
    }

    /// The bytes one more key may add by growing a full table (the
    /// common one: a collision is rare).
    pub fn growth_bytes(&self) -> usize {
        if self.by_hash.len() < self.by_hash.capacity() {
            return 0;
        }
        // The table's first allocation holds 3 (4 buckets); after that it
        // doubles.
        let capacity = self.by_hash.capacity();
        table_bytes(if capacity == 0 { 3 } else { capacity * 2 }, BY_HASH_BUCKET)
    }
}

/// A bucket of `by_hash`: the 32 bits and the id.
const BY_HASH_BUCKET: usize = std::mem::size_of::<(u32, Id)>();
/// A bucket of `collided`: the key's fat pointer and the id, padded.
const COLLIDED_BUCKET: usize = std::mem::size_of::<(Arc<str>, Id)>();

/// Bytes of a std `HashMap` table that holds `capacity` entries: a power
/// of two of buckets at most 7/8 full, each its entry and a control byte,
/// plus a group (16) of control bytes.
fn table_bytes(capacity: usize, bucket: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    (capacity * 8 / 7).next_power_of_two() * (bucket + 1) + 16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_what_it_holds_and_nothing_else() {
        let mut index = KeyIndex::default();
        let keys: Vec<Option<Arc<str>>> = vec![Some("cpu".into()), Some("mem".into())];
        for (id, key) in keys.iter().enumerate() {
            let key = key.as_ref().unwrap();
            index.insert(key, index.hash(key), id as Id);
        }
        assert_eq!(index.find(&keys, "cpu", index.hash("cpu")), Some(0));
        assert_eq!(index.find(&keys, "mem", index.hash("mem")), Some(1));
        assert_eq!(index.find(&keys, "disk", index.hash("disk")), None);
        assert_eq!(index.len(), 2);
        assert_eq!(index.remove(&keys, "cpu", index.hash("cpu")), Some(0));
        assert_eq!(index.remove(&keys, "cpu", index.hash("cpu")), None);
        assert_eq!(index.find(&keys, "cpu", index.hash("cpu")), None);
        assert_eq!(index.find(&keys, "mem", index.hash("mem")), Some(1));
    }

    #[test]
    fn keys_that_share_their_32_bits_are_told_apart() {
        // Every key filed under the same 32 bits, as a client that found
        // collisions could send them.
        let mut index = KeyIndex::default();
        let hash = KeyHash(7);
        let keys: Vec<Option<Arc<str>>> = ["a", "b", "c"].iter().map(|k| Some(Arc::from(*k))).collect();
        for (id, key) in keys.iter().enumerate() {
            index.insert(key.as_ref().unwrap(), hash, id as Id);
        }
        assert_eq!(index.collided.len(), 2, "b and c went aside");
        for (id, key) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(index.find(&keys, key, hash), Some(id as Id), "{key}");
        }
        assert_eq!(index.find(&keys, "d", hash), None);
        // With the holder of the 32 bits gone, the others are still found,
        // and a newcomer takes the free slot.
        assert_eq!(index.remove(&keys, "a", hash), Some(0));
        assert_eq!(index.find(&keys, "b", hash), Some(1));
        let keys: Vec<Option<Arc<str>>> = ["d", "b", "c"].iter().map(|k| Some(Arc::from(*k))).collect();
        index.insert(keys[0].as_ref().unwrap(), hash, 0);
        assert_eq!(index.find(&keys, "d", hash), Some(0));
        assert_eq!(index.find(&keys, "c", hash), Some(2));
        assert_eq!(index.remove(&keys, "c", hash), Some(2));
        assert_eq!(index.find(&keys, "c", hash), None);
    }

    /// Every byte of a key of any length reaches its hash: flipping any
    /// bit of it changes the hash (a byte the reads skipped would not).
    #[test]
    fn every_bit_of_a_key_changes_its_hash() {
        let hasher = KeyHasher::default();
        for len in 0..=48 {
            let key: Vec<u8> = (0..len as u8).map(|i| b'a' + i % 26).collect();
            let hash = hasher.hash(&key);
            for place in 0..len {
                for bit in 0..8 {
                    let mut changed = key.clone();
                    changed[place] ^= 1 << bit;
                    assert_ne!(hasher.hash(&changed), hash, "length {len}, byte {place}, bit {bit}");
                }
            }
            let mut longer = key.clone();
            longer.push(0);
            assert_ne!(hasher.hash(&longer), hash, "a zero byte more, length {len}");
        }
    }

    /// Keys as metrics name them, alike but for a few digits, spread over
    /// the 32 bits and the table's buckets as random numbers would: among
    /// 200,000 keys some 5 pairs share their 32 bits, and a table of 2^16
    /// buckets by the low bits holds about 3 in each, rarely over 15.
    #[test]
    fn keys_that_look_alike_spread_like_random_numbers() {
        let index = KeyIndex::default();
        let mut seen = std::collections::HashSet::new();
        let mut buckets = vec![0u32; 1 << 16];
        let mut shared = 0;
        for host in 0..2_000 {
            for metric in 0..100 {
                let key = format!("servers.host{host:04}.cpu.{metric}");
                let KeyHash(hash) = index.hash(&key);
                shared += usize::from(!seen.insert(hash));
                buckets[(hash & 0xFFFF) as usize] += 1;
            }
        }
        assert!(shared <= 25, "{shared} pairs share their 32 bits");
        let fullest = buckets.iter().max().copied().unwrap_or(0);
        assert!(fullest <= 18, "a bucket of {fullest}");
        // Another index draws other seeds.
        assert_ne!(KeyIndex::default().hash("cpu").0, index.hash("cpu").0);
    }

    proptest! {
        /// Against a `HashMap` of keys, with the 32 bits narrowed to 2 so
        /// that most keys collide: inserts of new keys, removals, lookups.
        #[test]
        fn agrees_with_a_map_of_keys(ops in proptest::collection::vec((0u8..3, 0u8..24), 1..200)) {
            let mut index = KeyIndex::default();
            let mut keys: Vec<Option<Arc<str>>> = Vec::new();
            let mut model: HashMap<String, Id> = HashMap::new();
            let narrow = |index: &KeyIndex, key: &str| KeyHash(index.hash(key).0 & 3);
            for (op, k) in ops {
                let key = format!("k{k}");
                match op {
                    0 if !model.contains_key(&key) => {
                        let id = keys.len() as Id;
                        let arc: Arc<str> = Arc::from(key.as_str());
                        keys.push(Some(Arc::clone(&arc)));
                        index.insert(&arc, narrow(&index, &key), id);
                        model.insert(key.clone(), id);
                    }
                    1 => {
                        let removed = index.remove(&keys, &key, narrow(&index, &key));
                        prop_assert_eq!(removed, model.remove(&key));
                    }
                    _ => {}
                }
                for k in 0..24 {
                    let key = format!("k{k}");
                    let found = index.find(&keys, &key, narrow(&index, &key));
                    prop_assert_eq!(found, model.get(&key).copied(), "{}", key);
                }
                prop_assert_eq!(index.len(), model.len());
            }
        }
    }
}
