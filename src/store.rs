//! In-memory series: per key, points sorted by timestamp, last write wins.
//!
//! A series is a list of sealed chunks ([`chunk::Chunk`]: bit-packed,
//! immutable, about 1.7 bytes a point on a realistic mix, see [`mix`]) and an
//! open head of plain points. Points newer than every sealed one go to the
//! head, which is sealed into a chunk when it holds [`CHUNK_POINTS`]; so
//! in-order appends cost a push, and one encoding per CHUNK_POINTS puts. A
//! point at or before the last sealed timestamp (a late point, a backfill,
//! an overwrite) goes into the sealed chunk that covers it, which is thawed
//! (decoded) for it and the late points that follow, and sealed again when
//! a late point lands in another chunk or the head is sealed; a block grown
//! past 2 × CHUNK_POINTS is split in two.
//!
//! Series live in a `Vec`, found by key through a hash map for puts and gets
//! and through an ordered map for `get *`: a new key is placed in order
//! once, in O(log keys), so a walk resumed after any key (a sliced answer, a
//! snapshot slice) finds its place in O(log keys) however many keys arrived
//! in between, and nothing re-sorts.

mod bits;
pub mod chunk;
pub mod mix;

use chunk::Chunk;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// A stored measurement: (timestamp, value).
pub type Point = (i64, f64);

/// Points a head holds before it is sealed into a chunk: 240, 40 minutes
/// at a 10 s interval. Prometheus seals at 120 samples; here each chunk also
/// costs a 40-byte `Chunk` and an allocation (about 0.5 B a point at 120,
/// 0.25 at 240: see the `mix` test), while the bits themselves shrink by
/// only 1.5% from 120 to 240. The head is plain points, 16 bytes each,
/// so a larger chunk costs a larger head (4 KiB per series that filled one)
/// and a dearer late point (it re-encodes up to 2 × CHUNK_POINTS).
pub const CHUNK_POINTS: usize = 240;

/// A block grown past this by late points is split in two.
const MAX_BLOCK_POINTS: usize = 2 * CHUNK_POINTS;

/// Part of a series before its head: sealed, or thawed for late points.
#[derive(Debug, Clone)]
enum Block {
    Sealed(Chunk),
    /// A sealed chunk decoded because a late point landed in it: further
    /// late points nearby (a backfill, a late batch) then cost an insert
    /// each instead of a decoding and an encoding. A series has at most one;
    /// it is sealed again when a late point lands elsewhere or the head is
    /// sealed. Sorted, non-empty.
    Thawed(Vec<Point>),
}

impl Block {
    fn min_ts(&self) -> i64 {
        match self {
            Block::Sealed(c) => c.min_ts(),
            Block::Thawed(points) => points[0].0,
        }
    }

    fn max_ts(&self) -> i64 {
        match self {
            Block::Sealed(c) => c.max_ts(),
            Block::Thawed(points) => points[points.len() - 1].0,
        }
    }

    fn len(&self) -> usize {
        match self {
            Block::Sealed(c) => c.len(),
            Block::Thawed(points) => points.len(),
        }
    }

    fn points(&self) -> BlockPoints<'_> {
        match self {
            Block::Sealed(c) => BlockPoints::Sealed(c.iter()),
            Block::Thawed(points) => BlockPoints::Thawed(points.iter()),
        }
    }

    /// The points, to change them.
    fn into_points(self) -> Vec<Point> {
        match self {
            Block::Sealed(c) => decode(&c),
            Block::Thawed(points) => points,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Block::Sealed(c) => c.bytes().len(),
            Block::Thawed(points) => points.capacity() * std::mem::size_of::<Point>(),
        }
    }

    fn seal(&mut self) {
        if let Block::Thawed(points) = self {
            *self = Block::Sealed(encode(points));
        }
    }
}

/// The points of a block, in order.
enum BlockPoints<'a> {
    Sealed(chunk::Points<'a>),
    Thawed(std::slice::Iter<'a, Point>),
}

impl Iterator for BlockPoints<'_> {
    type Item = Point;

    fn next(&mut self) -> Option<Point> {
        match self {
            BlockPoints::Sealed(points) => points.next(),
            BlockPoints::Thawed(points) => points.next().copied(),
        }
    }
}

/// The points of one key, ascending by timestamp, at most one per timestamp.
#[derive(Debug, Default, Clone)]
pub struct Series {
    /// Sorted, non-overlapping, each of at most MAX_BLOCK_POINTS points; at
    /// most one thawed.
    blocks: Vec<Block>,
    /// Sorted, fewer than CHUNK_POINTS points, all after the last block.
    head: Vec<Point>,
}

/// Decodes a chunk this store sealed.
fn decode(chunk: &Chunk) -> Vec<Point> {
    chunk.decode().expect("a chunk the store encoded decodes")
}

/// Encodes points of a series: sorted, fewer than `chunk::MAX_POINTS`.
fn encode(points: &[Point]) -> Chunk {
    Chunk::encode(points).expect("a series' points are sorted and fewer than a chunk's limit")
}

impl Series {
    /// Stores `value` at `timestamp`, replacing any value already there.
    /// Returns the value it replaced (None: the point is new).
    pub fn insert(&mut self, timestamp: i64, value: f64) -> Option<f64> {
        if self.blocks.last().is_none_or(|b| b.max_ts() < timestamp) {
            // The common case for metrics: a point newer than all stored ones.
            if self.head.last().is_none_or(|&(t, _)| t < timestamp) {
                self.head.push((timestamp, value));
            } else {
                match self.head.binary_search_by_key(&timestamp, |&(t, _)| t) {
                    Ok(i) => return Some(std::mem::replace(&mut self.head[i].1, value)),
                    Err(i) => self.head.insert(i, (timestamp, value)),
                }
            }
            if self.head.len() >= CHUNK_POINTS {
                self.blocks.iter_mut().for_each(Block::seal);
                self.blocks.push(Block::Sealed(encode(&self.head)));
                // The head keeps its capacity for the next chunk.
                self.head.clear();
            }
            return None;
        }
        let idx = self.covering_block(timestamp);
        if let Block::Sealed(chunk) = &self.blocks[idx] {
            // Rewriting a point with the same bits (a client's retry) leaves
            // the chunk sealed.
            let found = chunk.iter().find(|p| p.0 >= timestamp);
            if found.is_some_and(|p| p.0 == timestamp && p.1.to_bits() == value.to_bits()) {
                return Some(value);
            }
            // At most one block thawed: this one.
            self.blocks.iter_mut().for_each(Block::seal);
        }
        let mut points = std::mem::replace(&mut self.blocks[idx], Block::Thawed(Vec::new())).into_points();
        let replaced = match points.binary_search_by_key(&timestamp, |&(t, _)| t) {
            Ok(i) => Some(std::mem::replace(&mut points[i].1, value)),
            Err(i) => {
                points.insert(i, (timestamp, value));
                None
            }
        };
        if points.len() > MAX_BLOCK_POINTS {
            let (low, high) = points.split_at(points.len() / 2);
            self.blocks[idx] = Block::Sealed(encode(low));
            self.blocks.insert(idx + 1, Block::Sealed(encode(high)));
        } else {
            self.blocks[idx] = Block::Thawed(points);
        }
        replaced
    }

    /// Removes the point at `timestamp`, if there is one (undoing a put whose
    /// log write failed). A block left empty is dropped.
    pub fn remove(&mut self, timestamp: i64) -> bool {
        if self.blocks.last().is_none_or(|b| b.max_ts() < timestamp) {
            let Ok(i) = self.head.binary_search_by_key(&timestamp, |&(t, _)| t) else {
                return false;
            };
            self.head.remove(i);
            return true;
        }
        let idx = self.covering_block(timestamp);
        let mut points = self.blocks[idx].clone().into_points();
        let Ok(i) = points.binary_search_by_key(&timestamp, |&(t, _)| t) else {
            return false;
        };
        points.remove(i);
        if points.is_empty() {
            self.blocks.remove(idx);
        } else {
            self.blocks[idx] = Block::Sealed(encode(&points));
        }
        true
    }

    /// The block that holds `timestamp` if any does: the last one starting
    /// at or before it, or the first one if it is older than everything (0
    /// when there are none).
    fn covering_block(&self, timestamp: i64) -> usize {
        self.blocks
            .partition_point(|b| b.min_ts() <= timestamp)
            .saturating_sub(1)
    }

    /// Number of points stored: O(chunks), counted rather than kept, which
    /// saves 8 bytes in every series (no hot path asks; the store keeps the
    /// total).
    pub fn len(&self) -> usize {
        self.blocks.iter().map(Block::len).sum::<usize>() + self.head.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.head.is_empty()
    }

    /// The points, ascending by timestamp.
    pub fn iter(&self) -> impl Iterator<Item = Point> + '_ {
        self.points_after(None)
    }

    /// The points with a timestamp above `after` (all of them for `None`),
    /// ascending: where an answer cut into slices goes on. Sealed chunks
    /// wholly at or before `after` are skipped by their bounds, undecoded.
    pub fn points_after(&self, after: Option<i64>) -> impl Iterator<Item = Point> + '_ {
        self.points_from(move |t| after.is_some_and(|after| t <= after))
    }

    /// The points with `from <= timestamp <= to`, ascending. Chunks wholly
    /// before `from` are skipped by a binary search over their time bounds,
    /// undecoded, and the walk stops at the first point past `to`, so a short
    /// window of a long series costs about its own points.
    pub fn range(&self, from: i64, to: i64) -> impl Iterator<Item = Point> + '_ {
        self.points_from(move |t| t < from).take_while(move |&(t, _)| t <= to)
    }

    /// The points from the first whose timestamp is not `before`, which
    /// holds for a prefix of the timestamps (a binary search finds its end
    /// among the chunks and in the head).
    fn points_from<'a>(&'a self, before: impl Fn(i64) -> bool + Copy + 'a) -> impl Iterator<Item = Point> + 'a {
        let first = self.blocks.partition_point(|b| before(b.max_ts()));
        let head = self.head.partition_point(|p| before(p.0));
        self.blocks[first..]
            .iter()
            .flat_map(move |b| b.points().filter(move |p| !before(p.0)))
            .chain(self.head[head..].iter().copied())
    }

    /// Hands out the series after `after` (all of it for `None`) in
    /// [`Part`]s, in order, until `visit` returns false; then returns the
    /// last timestamp of the part it refused to go on after.
    fn visit_parts(&self, after: Option<i64>, mut visit: impl FnMut(Part<'_>) -> bool) -> Option<i64> {
        let before = |t: i64| after.is_some_and(|after| t <= after);
        let first = self.blocks.partition_point(|b| before(b.max_ts()));
        for block in &self.blocks[first..] {
            let go_on = match block {
                Block::Sealed(chunk) if !before(chunk.min_ts()) => visit(Part::Sealed(chunk)),
                // Entered in its middle (its points were split or merged
                // while the walk was paused): only what is left of it.
                Block::Sealed(chunk) => {
                    let rest: Vec<Point> = chunk.iter().filter(|p| !before(p.0)).collect();
                    visit(Part::Points(&rest))
                }
                Block::Thawed(points) => visit(Part::Points(&points[points.partition_point(|p| before(p.0))..])),
            };
            if !go_on {
                return Some(block.max_ts());
            }
        }
        let head = &self.head[self.head.partition_point(|p| before(p.0))..];
        match head.last() {
            Some(last) if !visit(Part::Points(head)) => Some(last.0),
            _ => None,
        }
    }

    /// Appends a sealed chunk whose points all come after the series'
    /// (loading a snapshot), keeping its bits; hands it back if it does not
    /// fit there or is larger than a block may be. A head already there is
    /// sealed first, so the blocks stay in order.
    fn adopt(&mut self, chunk: Chunk) -> Result<(), Chunk> {
        let last = self.head.last().map(|p| p.0).or(self.blocks.last().map(Block::max_ts));
        if chunk.len() > MAX_BLOCK_POINTS || last.is_some_and(|t| t >= chunk.min_ts()) {
            return Err(chunk);
        }
        self.blocks.iter_mut().for_each(Block::seal);
        if !self.head.is_empty() {
            self.blocks.push(Block::Sealed(encode(&self.head)));
            self.head.clear();
        }
        self.blocks.push(Block::Sealed(chunk));
        Ok(())
    }

    /// Bytes allocated for points (capacity, not length): for memory figures.
    pub fn allocated_bytes(&self) -> usize {
        let blocks: usize = self.blocks.iter().map(Block::heap_bytes).sum();
        blocks
            + self.blocks.capacity() * std::mem::size_of::<Block>()
            + self.head.capacity() * std::mem::size_of::<Point>()
    }
}

/// A piece of a series as [`Store::walk_parts`] hands it out: what a
/// snapshot stores.
#[derive(Debug, Clone, Copy)]
pub enum Part<'a> {
    /// A sealed chunk, whole: its bits can be stored as they are.
    Sealed(&'a Chunk),
    /// Points outside sealed chunks (the head, a thawed block, or the rest
    /// of a sealed chunk that a resumed walk entered in its middle): sorted,
    /// not empty.
    Points(&'a [Point]),
}

/// Where a [`Store::walk`] stopped: after the point of `key` at timestamp
/// `after`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub key: Arc<str>,
    pub after: i64,
}

/// Every series, by key.
#[derive(Debug, Default)]
pub struct Store {
    /// The series, in the order their keys were first put; an index here
    /// is a series' id (keys are never removed, so ids are never reused).
    series: Vec<Series>,
    /// Key → id, for puts and gets: one hash lookup.
    ids: HashMap<Arc<str>, usize>,
    /// Key → id in ascending byte order, for walks (`get *`, snapshots). A
    /// walk resumed after any key finds its place in O(log keys) however
    /// many keys arrived since (a sorted `Vec` with new keys merged in at
    /// the next walk cost O(keys) a slice), and reaches each series without
    /// hashing its key (which was most of a walk over a million series).
    order: BTreeMap<Arc<str>, usize>,
    points: usize,
    /// Series with at least one point: a deleted key stays in the maps
    /// but is not counted.
    live: usize,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores one point (last write wins); returns the value it replaced.
    /// Allocates only for a new key.
    pub fn put(&mut self, key: &str, timestamp: i64, value: f64) -> Option<f64> {
        let series = self.series_mut(key);
        let was_empty = series.is_empty();
        let replaced = series.insert(timestamp, value);
        self.points += usize::from(replaced.is_none());
        self.live += usize::from(was_empty);
        replaced
    }

    /// Stores points of one key, looking the key up once (loading a snapshot).
    pub fn put_points(&mut self, key: &str, points: impl IntoIterator<Item = Point>) {
        let series = self.series_mut(key);
        let was_empty = series.is_empty();
        let added = points
            .into_iter()
            .filter(|&(timestamp, value)| series.insert(timestamp, value).is_none())
            .count();
        self.points += added;
        self.live += usize::from(was_empty && added > 0);
    }

    /// Stores the points of a sealed chunk read from a snapshot. The chunk
    /// is decoded once to check it (bits that are not a chunk are refused,
    /// and nothing of them stored); then it is kept as it is if it comes
    /// after every point of the series, as a snapshot's chunks do, and its
    /// points are inserted one by one if not. Returns its point count.
    pub fn adopt_chunk(&mut self, key: &str, chunk: Chunk) -> Result<usize, chunk::DecodeError> {
        let mut points = chunk.iter();
        let count = points.by_ref().count();
        if let Some(e) = points.error() {
            return Err(e);
        }
        let series = self.series_mut(key);
        match series.adopt(chunk) {
            Ok(()) => self.points += count,
            Err(chunk) => {
                let added = chunk.iter().filter(|&(t, v)| series.insert(t, v).is_none()).count();
                self.points += added;
            }
        }
        Ok(count)
    }

    /// Removes one point, if stored. The key stays (keys are never removed,
    /// which a paused [`Store::walk`] relies on), possibly with no points.
    pub fn remove(&mut self, key: &str, timestamp: i64) {
        if let Some(&id) = self.ids.get(key) {
            let series = &mut self.series[id];
            let removed = series.remove(timestamp);
            self.points -= usize::from(removed);
            self.live -= usize::from(removed && series.is_empty());
        }
    }

    /// Takes every point of `key` out (a `delete`), returning them. The key
    /// stays in the maps, with no points, like a key whose only put was
    /// taken back: a paused [`Store::walk`] relies on keys staying, and an
    /// empty series is answered and snapshotted like a missing one (its few
    /// bytes are freed at the next restart).
    pub fn take_series(&mut self, key: &str) -> Option<Series> {
        let &id = self.ids.get(key)?;
        let series = std::mem::take(&mut self.series[id]);
        self.points -= series.len();
        self.live -= usize::from(!series.is_empty());
        Some(series)
    }

    /// Puts back the points [`Store::take_series`] took, replacing whatever
    /// `key` holds now (undoing a delete, after the puts that followed it
    /// were undone).
    pub fn restore_series(&mut self, key: &str, series: Series) {
        let (points, live) = (series.len(), usize::from(!series.is_empty()));
        let dropped = std::mem::replace(self.series_mut(key), series);
        self.points = self.points + points - dropped.len();
        self.live = self.live + live - usize::from(!dropped.is_empty());
    }

    /// The series of `key`, created if missing, with one hash lookup for a
    /// key already stored (the hot path of every put).
    fn series_mut(&mut self, key: &str) -> &mut Series {
        let id = match self.ids.get(key) {
            Some(&id) => id,
            None => {
                let id = self.series.len();
                let key: Arc<str> = Arc::from(key);
                self.series.push(Series::default());
                self.order.insert(Arc::clone(&key), id);
                self.ids.insert(key, id);
                id
            }
        };
        &mut self.series[id]
    }

    /// The series of one key.
    pub fn get(&self, key: &str) -> Option<&Series> {
        self.ids.get(key).map(|&id| &self.series[id])
    }

    /// Visits every point, key by key in ascending byte order and by
    /// timestamp within a key, starting after `from` (None: from the start).
    /// `visit` returns false to stop after the point it was given; the walk
    /// then returns where it stopped, and None when it reached the end.
    ///
    /// A walk can be paused and resumed while puts go on (a sliced `get *`
    /// answer, a snapshot written a slice per loop turn): keys are never
    /// removed, so the key it stopped in is still there. Points and keys added
    /// in between are seen if they sort after the place it stopped, and not
    /// otherwise; no point is visited twice.
    pub fn walk(&self, from: Option<Cursor>, mut visit: impl FnMut(&Arc<str>, Point) -> bool) -> Option<Cursor> {
        let start = from
            .as_ref()
            .map_or(Bound::Unbounded, |cursor| Bound::Included(&*cursor.key));
        let mut after = from.as_ref().map(|cursor| cursor.after);
        for (key, &id) in self.order.range::<str, _>((start, Bound::Unbounded)) {
            for point in self.series[id].points_after(after.take()) {
                if !visit(key, point) {
                    return Some(Cursor {
                        key: Arc::clone(key),
                        after: point.0,
                    });
                }
            }
        }
        None
    }

    /// Visits every series as [`Store::walk`] does, but a [`Part`] at a
    /// time: whole sealed chunks and runs of plain points, for a snapshot
    /// that stores chunks as they are. Pauses and resumes like a walk: the
    /// cursor is after the last point of the part `visit` stopped after.
    pub fn walk_parts(
        &self,
        from: Option<Cursor>,
        mut visit: impl FnMut(&Arc<str>, Part<'_>) -> bool,
    ) -> Option<Cursor> {
        let mut after = from.as_ref().map(|cursor| cursor.after);
        for (key, series) in self.series_from(from.as_ref().map(|cursor| &*cursor.key)) {
            if let Some(last) = series.visit_parts(after.take(), |part| visit(key, part)) {
                return Some(Cursor {
                    key: Arc::clone(key),
                    after: last,
                });
            }
        }
        None
    }

    /// Every series from the key `start` on (all of them for `None`), in
    /// ascending byte order of their keys, as [`Store::walk`] visits them.
    pub fn series_from<'a>(&'a self, start: Option<&'a str>) -> impl Iterator<Item = (&'a Arc<str>, &'a Series)> + 'a {
        let start = start.map_or(Bound::Unbounded, Bound::Included);
        self.order
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(key, &id)| (key, &self.series[id]))
    }

    /// Number of series with points (a deleted key is not one).
    pub fn series_count(&self) -> usize {
        self.live
    }

    /// Number of points in all series.
    pub fn point_count(&self) -> usize {
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::XorShift;

    #[test]
    fn in_order_appends_fill_whole_chunks() {
        let mut s = Series::default();
        let n = CHUNK_POINTS * 10 + 3;
        for t in 0..n as i64 {
            assert_eq!(s.insert(t, t as f64), None);
        }
        assert_eq!(s.blocks.len(), 10);
        assert!(s
            .blocks
            .iter()
            .all(|b| matches!(b, Block::Sealed(c) if c.len() == CHUNK_POINTS)));
        assert_eq!(s.head.len(), 3);
        // Steady steps and values: a few bits a point, plus the head's
        // capacity and the chunks' headers.
        let head = CHUNK_POINTS.next_power_of_two() * 16;
        assert!(s.allocated_bytes() <= n / 2 + head + 16 * 40, "{}", s.allocated_bytes());
        assert_eq!(
            s.iter().map(|p| p.0).collect::<Vec<_>>(),
            (0..n as i64).collect::<Vec<_>>()
        );
    }

    #[test]
    fn points_after_resumes_anywhere() {
        let mut s = Series::default();
        for t in (0..2000i64).map(|t| t * 3) {
            s.insert(t, t as f64);
        }
        for after in [-1, 0, 1, 2, 3, 767, 768, 769, 3000, 5996, 5997, 100_000] {
            let want: Vec<Point> = s.iter().filter(|p| p.0 > after).collect();
            assert_eq!(s.points_after(Some(after)).collect::<Vec<_>>(), want, "after {after}");
        }
        assert_eq!(s.points_after(None).count(), 2000);
    }

    /// Bytes allocated per point for a series built from `timestamps`.
    fn bytes_per_point(timestamps: impl Iterator<Item = i64>) -> f64 {
        let mut s = Series::default();
        for t in timestamps {
            s.insert(t, 0.0);
        }
        s.allocated_bytes() as f64 / s.len() as f64
    }

    #[test]
    fn memory_stays_compact_in_common_orders() {
        let n = 100_000i64;
        let in_order = bytes_per_point(0..n);
        // Every tenth point arrives one step late.
        let late = bytes_per_point((0..n).map(|t| {
            if t % 10 == 9 {
                t - 1
            } else if t % 10 == 8 {
                t + 1
            } else {
                t
            }
        }));
        let descending = bytes_per_point((0..n).rev());
        let mut rng = XorShift(7);
        let random = bytes_per_point((0..n).map(|_| (rng.next() % (n as u64 * 4)) as i64));
        // A constant value at steady steps takes a bit a point; what
        // remains is chunk headers and the head.
        assert!(in_order < 0.5, "in order: {in_order}");
        assert!(late < 1.0, "late points: {late}");
        assert!(descending < 0.5, "descending: {descending}");
        // Random steps cost their entropy, about 12 bits; chunks split by
        // late points are half full.
        assert!(random < 4.0, "random: {random}");
    }

    #[test]
    fn overwrite_keeps_one_point_per_timestamp() {
        let mut s = Series::default();
        assert_eq!(s.insert(1150864247, 0.5), None);
        assert_eq!(s.insert(1150864248, 2.0), None);
        assert_eq!(s.insert(1150864248, 0.5), Some(2.0));
        assert_eq!(s.insert(1150864247, 0.5), Some(0.5));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(1150864247, 0.5), (1150864248, 0.5)]);
    }

    #[test]
    fn descending_and_extreme_timestamps() {
        let mut s = Series::default();
        let mut model = BTreeMap::new();
        for t in (0..2000i64).rev().chain([i64::MIN, i64::MAX, 0, -1]) {
            s.insert(t, t as f64 / 2.0);
            model.insert(t, t as f64 / 2.0);
        }
        check_series(&s, &model, &mut XorShift::seeded(1));
    }

    #[test]
    fn a_deleted_key_has_no_points_until_put_again_and_a_restore_undoes_it() {
        let mut st = Store::new();
        for t in 0..600 {
            st.put("a", t, 1.0);
        }
        st.put("b", 1, 2.0);
        assert_eq!(st.take_series("none").map(|s| s.len()), None);
        let taken = st.take_series("a").expect("a is stored");
        assert_eq!(taken.len(), 600);
        assert_eq!((st.series_count(), st.point_count()), (1, 1));
        assert!(st.get("a").is_none_or(Series::is_empty));
        // A walk over a deleted key, even resumed inside it, skips it.
        let mut seen = Vec::new();
        let cursor = Some(Cursor {
            key: Arc::from("a"),
            after: 5,
        });
        st.walk(cursor, |key, point| {
            seen.push((key.to_string(), point));
            true
        });
        assert_eq!(seen, [("b".to_owned(), (1, 2.0))]);
        st.put("a", 7, 3.0);
        assert_eq!((st.series_count(), st.point_count()), (2, 2));
        // Undone in reverse: the later put, then the delete.
        st.remove("a", 7);
        assert_eq!((st.series_count(), st.point_count()), (1, 1));
        st.restore_series("a", taken);
        assert_eq!((st.series_count(), st.point_count()), (2, 601));
        assert_eq!(st.get("a").map(Series::len), Some(600));
    }

    #[test]
    fn store_counts_and_orders_keys() {
        let mut st = Store::new();
        st.put("palm.cpu", 1150864248, 0.5);
        st.put("palm.cpu", 1150864247, 2.0);
        st.put("eardrum.cpu", 1150864250, 3.0);
        st.put("palm.cpu", 1150864248, 0.5);
        assert_eq!((st.series_count(), st.point_count()), (2, 3));
        // The keys a walk visits, in its order.
        let keys = |st: &Store| {
            let mut keys: Vec<String> = Vec::new();
            st.walk(None, |key, _| {
                if keys.last().is_none_or(|last| **last != **key) {
                    keys.push(key.to_string());
                }
                true
            });
            keys
        };
        assert_eq!(keys(&st), ["eardrum.cpu", "palm.cpu"]);
        // Later keys take their place in byte order (Unicode after ASCII).
        for k in ["b", "zz", "a", "palm.cpu", "\u{0436}", "A"] {
            st.put(k, 0, 1.0);
        }
        assert_eq!(keys(&st), ["A", "a", "b", "eardrum.cpu", "palm.cpu", "zz", "\u{0436}"]);
        let from = |start| st.series_from(start).map(|(k, _)| k.to_string()).collect::<Vec<_>>();
        assert_eq!(from(None), keys(&st));
        assert_eq!(from(Some("b")), ["b", "eardrum.cpu", "palm.cpu", "zz", "\u{0436}"]);
        assert_eq!(from(Some("c")), ["eardrum.cpu", "palm.cpu", "zz", "\u{0436}"]);
        assert_eq!(from(Some("\u{0437}")), Vec::<String>::new());
        assert_eq!(st.get("palm.cpu").map(Series::len), Some(3));
        assert!(st.get("nothing").is_none());
    }

    /// Every point, the chunk invariants, and `points_after` at every chunk
    /// boundary, against the model.
    fn check_series(s: &Series, model: &BTreeMap<i64, f64>, rng: &mut XorShift) {
        let want: Vec<Point> = model.iter().map(|(&t, &v)| (t, v)).collect();
        assert_eq!(s.iter().collect::<Vec<_>>(), want);
        let mut prev: Option<i64> = None;
        for b in &s.blocks {
            assert!(b.len() > 0 && b.len() <= MAX_BLOCK_POINTS, "len {}", b.len());
            let points = b.clone().into_points();
            assert_eq!(points.len(), b.len());
            assert_eq!((points[0].0, points[points.len() - 1].0), (b.min_ts(), b.max_ts()));
            for p in points {
                assert!(prev.is_none_or(|q| q < p.0), "unsorted or overlapping");
                prev = Some(p.0);
            }
        }
        assert!(s.head.len() < CHUNK_POINTS);
        for p in &s.head {
            assert!(prev.is_none_or(|q| q < p.0), "head unsorted or before a chunk");
            prev = Some(p.0);
        }
        assert_eq!(s.len(), model.len());
        let mut afters = vec![i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1, -1, 0];
        let head_bounds = s.head.first().zip(s.head.last()).map(|(a, b)| (a.0, b.0));
        assert!(s.blocks.iter().filter(|b| matches!(b, Block::Thawed(_))).count() <= 1);
        for (min, max) in s.blocks.iter().map(|b| (b.min_ts(), b.max_ts())).chain(head_bounds) {
            for t in [min, max] {
                afters.extend([t.saturating_sub(1), t, t.saturating_add(1)]);
            }
        }
        afters.extend((0..20).map(|_| rng.next() as i64));
        for &after in &afters {
            let want: Vec<Point> = model
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .map(|(&t, &v)| (t, v))
                .collect();
            assert_eq!(s.points_after(Some(after)).collect::<Vec<_>>(), want, "after {after}");
        }
        assert_eq!(s.points_after(None).count(), model.len());
        // Extremes, some chunk edges and some random bounds, every pair.
        let bounds: Vec<i64> = afters.iter().copied().step_by(afters.len() / 24 + 1).collect();
        for &from in &bounds {
            for &to in &bounds {
                if from <= to {
                    let want: Vec<Point> = model.range(from..=to).map(|(&t, &v)| (t, v)).collect();
                    assert_eq!(s.range(from, to).collect::<Vec<_>>(), want, "range {from} {to}");
                }
            }
        }
    }

    #[test]
    fn random_shapes_keep_chunk_invariants_and_resume_points() {
        for seed in 1..80u64 {
            let mut rng = XorShift::seeded(seed);
            let mut s = Series::default();
            let mut model = BTreeMap::new();
            let n = 1 + rng.below(6000) as i64;
            for i in 0..n {
                let t = match seed % 8 {
                    0 => n - i,
                    1 if i % 7 == 0 => i - 300,
                    1 => i,
                    2 => rng.below(1000) as i64,
                    3 => rng.next() as i64,
                    4 => [i64::MIN, i64::MAX, i, -i, i64::MIN + i, i64::MAX - i][rng.below(6) as usize],
                    // Mostly overwrites of a few timestamps.
                    5 => rng.below(10) as i64,
                    6 => rng.below(300) as i64,
                    _ if i % 2 == 0 => i,
                    _ => 100_000 - i,
                };
                assert_eq!(s.insert(t, i as f64), model.insert(t, i as f64));
                // Now and then take a point back out (a failed commit's undo).
                if rng.below(16) == 0 {
                    let gone = if rng.below(2) == 0 { t } else { rng.below(1000) as i64 };
                    assert_eq!(s.remove(gone), model.remove(&gone).is_some());
                }
                if rng.below(2048) == 0 {
                    check_series(&s, &model, &mut rng);
                }
            }
            check_series(&s, &model, &mut rng);
        }
    }

    /// Points as (key, timestamp, value bits), in walk order.
    fn dump(store: &Store) -> Vec<(String, i64, u64)> {
        let mut out = Vec::new();
        store.walk(None, |key, (t, v)| {
            out.push((key.to_string(), t, v.to_bits()));
            true
        });
        out
    }

    #[test]
    fn a_paused_parts_walk_with_puts_between_rebuilds_the_store_as_a_snapshot_does() {
        for seed in 1..8u64 {
            let mut rng = XorShift::seeded(seed);
            let mut store = Store::new();
            let keys = ["a", "b", "c", "d"];
            let put = |store: &mut Store, rng: &mut XorShift, spread: u64| {
                let key = keys[rng.below(keys.len() as u64) as usize];
                let (t, v) = (rng.below(spread) as i64, rng.below(1000) as f64 / 10.0);
                store.put(key, t, v);
                (key, t, v)
            };
            // In order, so that most of it is sealed; late points come
            // while the walk is paused, some between two chunks (which
            // grows the one the walk paused after past where it paused).
            for t in 0..1200 {
                for key in keys {
                    store.put(key, 2 * t, rng.below(1000) as f64 / 10.0);
                }
            }
            let before = dump(&store);
            // What a snapshot written a part at a time holds, loaded into a
            // new store, with the puts made while it was written replayed
            // on top (as the log holds them): the store as it ended.
            let mut loaded = Store::new();
            let mut during = Vec::new();
            let mut visited: Vec<(String, i64)> = Vec::new();
            let (mut cursor, mut sealed) = (None, 0);
            loop {
                let mut budget = 1 + rng.below(4);
                cursor = store.walk_parts(cursor, |key, part| {
                    match part {
                        Part::Sealed(chunk) => {
                            sealed += 1;
                            visited.extend(chunk.iter().map(|p| (key.to_string(), p.0)));
                            loaded.adopt_chunk(key, chunk.clone()).unwrap();
                        }
                        Part::Points(points) => {
                            assert!(!points.is_empty());
                            visited.extend(points.iter().map(|p| (key.to_string(), p.0)));
                            loaded.put_points(key, points.iter().copied());
                        }
                    }
                    budget -= 1;
                    budget > 0
                });
                if cursor.is_none() {
                    break;
                }
                // Right after where it paused: the part it paused after
                // grows past the cursor, and a put elsewhere seals it again.
                if let Some(at) = cursor.as_ref().filter(|_| rng.below(2) == 0) {
                    let key = keys.into_iter().find(|k| **k == *at.key).expect("a key of the test");
                    store.put(key, at.after + 1, 0.25);
                    during.push((key, at.after + 1, 0.25));
                }
                for _ in 0..rng.below(40) {
                    during.push(put(&mut store, &mut rng, 2500));
                }
            }
            assert!(sealed >= 8, "seed {seed}: {sealed} sealed chunks");
            // Visited once each, in order; nothing there at the start missed.
            assert!(visited.windows(2).all(|w| w[0] < w[1]), "seed {seed}: out of order");
            let visited: std::collections::BTreeSet<(String, i64)> = visited.into_iter().collect();
            assert!(before.iter().all(|(k, t, _)| visited.contains(&(k.clone(), *t))));
            for (key, t, v) in during {
                loaded.put(key, t, v);
            }
            assert_eq!(dump(&loaded), dump(&store), "seed {seed}");
            assert_eq!(loaded.point_count(), store.point_count());
        }
    }

    #[test]
    fn an_adopted_chunk_is_checked_and_kept_in_order() {
        let points: Vec<Point> = (0..CHUNK_POINTS as i64).map(|t| (100 + t, t as f64)).collect();
        let chunk = Chunk::encode(&points).unwrap();
        let mut store = Store::new();
        // A head before it: sealed first, so the blocks stay in order.
        store.put("k", 1, 0.5);
        assert_eq!(store.adopt_chunk("k", chunk.clone()), Ok(CHUNK_POINTS));
        let s = store.get("k").unwrap();
        assert_eq!((s.blocks.len(), s.head.len()), (2, 0));
        // Overlapping what is there: its points inserted, last write wins.
        let again = Chunk::encode(&[(1, 2.0), (150, 3.0)]).unwrap();
        assert_eq!(store.adopt_chunk("k", again), Ok(2));
        let mut model: BTreeMap<i64, f64> = points.into_iter().collect();
        model.extend([(1, 2.0), (150, 3.0)]);
        check_series(store.get("k").unwrap(), &model, &mut XorShift::seeded(3));
        assert_eq!(store.point_count(), model.len());
        // Bits that are not a chunk: refused, nothing stored, no key made.
        let bad = Chunk::from_parts(0, 10, 2, chunk.bytes()[..2].into()).unwrap();
        assert!(store.adopt_chunk("new", bad).is_err());
        assert!(store.get("new").is_none());
        assert_eq!(store.point_count(), model.len());
    }

    #[test]
    fn backfilling_a_gap_newest_first_stays_compact() {
        // A full chunk, one newer point, then the gap between them filled
        // newest first: every point lands past the end of the full chunk,
        // and none may become a chunk of its own.
        let mut s = Series::default();
        for t in 0..CHUNK_POINTS as i64 {
            s.insert(t, 0.0);
        }
        s.insert(1_000_000, 0.0);
        for t in (1_000_000 - 20_000..1_000_000).rev() {
            s.insert(t, 0.0);
        }
        let per_point = s.allocated_bytes() as f64 / s.len() as f64;
        assert!(
            s.blocks.len() < s.len() / 64,
            "{} chunks for {} points",
            s.blocks.len(),
            s.len()
        );
        assert!(per_point < 20.0, "{per_point} bytes a point");
    }

    #[test]
    fn splitting_near_the_front_of_full_chunks_stays_compact() {
        // Each full chunk is split just after its first point and refilled
        // near its end, again and again: chunks must not shrink to a few
        // points each.
        let mut s = Series::default();
        const GAP: i64 = 1 << 20;
        let n = CHUNK_POINTS as i64;
        for t in 0..100 * n {
            s.insert(t * GAP, 0.0);
        }
        s.insert(i64::MAX, 0.0);
        for m in 0..100 {
            let b = m * n;
            for k in 0..n - 2 {
                assert_eq!(s.insert((b + k) * GAP + 1, 0.0), None);
                assert_eq!(s.insert((b + n - 1) * GAP - (k + 1), 0.0), None);
            }
        }
        assert!(
            s.blocks.len() < s.len() / 32,
            "{} chunks for {} points",
            s.blocks.len(),
            s.len()
        );
    }
}

/// Memory figures of issue 13, measured as the process's resident set
/// around building a store: not tests (RSS depends on the allocator and on
/// what else the process does), so ignored; run them alone, in release:
/// `cargo test --release --lib store::memory::NAME -- --ignored --nocapture --exact`.
#[cfg(test)]
mod memory {
    use super::*;

    /// The resident set, from /proc (Linux).
    fn rss_bytes() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
        let kib: usize = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("VmRSS in kB");
        kib * 1024
    }

    /// RSS grown by the store `build` returns, per unit.
    fn rss_per(units: usize, build: impl FnOnce() -> Store) -> (f64, Store) {
        let before = rss_bytes();
        let store = build();
        let grown = rss_bytes().saturating_sub(before);
        (grown as f64 / units as f64, store)
    }

    #[test]
    #[ignore = "a measurement: run alone, in release"]
    fn rss_per_point_of_the_mix() {
        let mix = mix::Mix {
            seed: 1,
            start: 1_700_000_000,
        };
        // Ten hosts' 20 metrics for a week each: long series, as a server
        // holding a month of data has, so the head (up to CHUNK_POINTS plain
        // points a series) is a small share.
        let (hosts, metrics, points) = (10u64, 20u64, 60_480usize);
        let total = (hosts * metrics) as usize * points;
        let (per_point, store) = rss_per(total, || {
            let mut store = Store::new();
            for host in 0..hosts {
                for metric in 0..metrics {
                    let key = mix.key(host, metric);
                    for (t, v) in mix.series(host, metric).take(points) {
                        store.put(&key, t, v);
                    }
                }
            }
            store
        });
        let allocated: usize = store.series.iter().map(Series::allocated_bytes).sum();
        println!(
            "mix, {} series x {points} points: {per_point:.3} B RSS/point, {:.3} B allocated/point",
            hosts * metrics,
            allocated as f64 / total as f64
        );
        assert_eq!(store.point_count(), total);
    }

    /// A million series of `points` points, 30-byte keys.
    fn rss_per_series(points: i64) {
        const SERIES: usize = 1_000_000;
        let key = |i: usize| format!("pod{i:016x}.memory.rss");
        assert_eq!(key(0).len(), 30);
        let (per_series, _store) = rss_per(SERIES, || {
            let mut store = Store::new();
            for i in 0..SERIES {
                let key = key(i);
                for t in 0..points {
                    store.put(&key, 1_700_000_000 + 10 * t, 0.5 + t as f64);
                }
            }
            store
        });
        println!(
            "{SERIES} series of {points} point(s), 30-byte keys: {per_series:.0} B RSS/series, {:.0} beyond the key",
            per_series - 30.0
        );
    }

    // Each in a process of its own (filter by name): memory freed by one
    // would be reused by the next and not counted.
    #[test]
    #[ignore = "a measurement: run alone, in release"]
    fn rss_per_series_of_one_point() {
        rss_per_series(1);
    }

    #[test]
    #[ignore = "a measurement: run alone, in release"]
    fn rss_per_series_of_ten_points() {
        rss_per_series(10);
    }
}
