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
    /// SipHash with random keys, as std's `HashMap` hashes: keys come from
    /// clients, who must not be able to aim at one bucket.
    hasher: RandomState,
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
        // The low bits of SipHash are as random as its high ones.
        KeyHash(self.hasher.hash_one(key) as u32)
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
