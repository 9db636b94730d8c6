//! In-memory series: per key, points sorted by timestamp, last write wins.
//!
//! A series is a list of sorted, non-overlapping chunks of at most
//! [`CHUNK_POINTS`] points. In-order appends touch only the last chunk, so they
//! are O(1) amortized and never copy the series; an out-of-order point is
//! inserted into the one chunk that covers its timestamp (a bounded memmove),
//! and a full chunk splits in two. Slack is at most one partly filled chunk
//! per series for in-order data, which keeps memory near the 16 bytes a point
//! takes (8 for the timestamp, 8 for the value).
//!
//! Series live in a `Vec`, found by key through a hash map for puts and gets
//! and through an ordered map for `get *`: a new key is placed in order
//! once, in O(log keys), so a walk resumed after any key (a sliced answer, a
//! snapshot slice) finds its place in O(log keys) however many keys arrived
//! in between, and nothing re-sorts.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// A stored measurement: (timestamp, value).
pub type Point = (i64, f64);

/// Points per chunk: 256 × 16 bytes = 4 KiB, one page. Large enough that the
/// per-chunk overhead (a 24-byte Vec header and an allocation) is under 1% of
/// the data, small enough that an out-of-order insert moves at most 4 KiB and
/// that a series wastes at most one page.
pub const CHUNK_POINTS: usize = 256;

/// The points of one key, ascending by timestamp, at most one per timestamp.
#[derive(Debug, Default, Clone)]
pub struct Series {
    /// Each chunk is sorted, non-empty and holds at most CHUNK_POINTS points;
    /// every timestamp in a chunk is below every timestamp in the next.
    chunks: Vec<Vec<Point>>,
}

impl Series {
    /// Stores `value` at `timestamp`, replacing any value already there.
    /// Returns the value it replaced (None: the point is new).
    pub fn insert(&mut self, timestamp: i64, value: f64) -> Option<f64> {
        let Some(last) = self.chunks.last_mut() else {
            self.chunks.push(vec![(timestamp, value)]);
            return None;
        };
        // The common case for metrics: a point newer than all stored ones.
        if last.last().is_some_and(|&(t, _)| t < timestamp) {
            if last.len() < CHUNK_POINTS {
                // Growth by doubling stops at exactly CHUNK_POINTS, a power of two.
                last.push((timestamp, value));
            } else {
                let mut chunk = Vec::with_capacity(CHUNK_POINTS);
                chunk.push((timestamp, value));
                self.chunks.push(chunk);
            }
            return None;
        }
        let idx = self.covering_chunk(timestamp);
        let is_last = idx + 1 == self.chunks.len();
        let chunk = &mut self.chunks[idx];
        match chunk.binary_search_by_key(&timestamp, |&(t, _)| t) {
            Ok(i) => Some(std::mem::replace(&mut chunk[i].1, value)),
            Err(i) => {
                if chunk.len() < CHUNK_POINTS {
                    chunk.insert(i, (timestamp, value));
                } else if i == chunk.len() {
                    // Past the end of a full chunk that is not the last: the
                    // front of the next chunk, or a new chunk if that is full
                    // too. (A chunk per point here would make a backfill,
                    // newest first, quadratic: every point a chunk, every
                    // insert shifting the chunk list.)
                    let next = &mut self.chunks[idx + 1];
                    if next.len() < CHUNK_POINTS {
                        next.insert(0, (timestamp, value));
                    } else {
                        self.chunks.insert(idx + 1, vec![(timestamp, value)]);
                    }
                } else {
                    // Split a full chunk. In the middle, as B-trees do, unless
                    // the point lands where the small side is sure to fill up:
                    // at the very front of the series (descending data starts
                    // a new front chunk) or in the back half of the last chunk
                    // (a late point leaves the full part full; appends fill the
                    // rest). Splitting at the insert position anywhere else
                    // lets a hostile order leave chunks of one or two points.
                    let at = if (i == 0 && idx == 0) || (is_last && i >= CHUNK_POINTS / 2) {
                        i
                    } else {
                        CHUNK_POINTS / 2
                    };
                    let mut upper = Vec::with_capacity(CHUNK_POINTS);
                    upper.extend_from_slice(&chunk[at..]);
                    chunk.truncate(at);
                    if i <= at {
                        chunk.insert(i, (timestamp, value));
                    } else {
                        upper.insert(i - at, (timestamp, value));
                    }
                    if at == 0 {
                        // A new front chunk of one point grows by doubling.
                        chunk.shrink_to(1);
                    }
                    self.chunks.insert(idx + 1, upper);
                }
                None
            }
        }
    }

    /// Removes the point at `timestamp`, if there is one (undoing a put whose
    /// log write failed). A chunk left empty is dropped.
    pub fn remove(&mut self, timestamp: i64) -> bool {
        let idx = self.covering_chunk(timestamp);
        let Some(chunk) = self.chunks.get_mut(idx) else {
            return false;
        };
        let Ok(i) = chunk.binary_search_by_key(&timestamp, |&(t, _)| t) else {
            return false;
        };
        chunk.remove(i);
        if chunk.is_empty() {
            self.chunks.remove(idx);
        }
        true
    }

    /// The chunk that holds `timestamp` if any does: the last one starting
    /// at or before it, or the first one if it is older than everything (0
    /// when there are no chunks).
    fn covering_chunk(&self, timestamp: i64) -> usize {
        self.chunks.partition_point(|c| c[0].0 <= timestamp).saturating_sub(1)
    }

    /// Number of points stored: O(chunks), counted rather than kept, which
    /// saves 8 bytes in every series (no hot path asks; the store keeps the
    /// total).
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The points, ascending by timestamp.
    pub fn iter(&self) -> impl Iterator<Item = Point> + '_ {
        self.points_after(None)
    }

    /// The points with a timestamp above `after` (all of them for `None`),
    /// ascending: where an answer cut into slices goes on.
    pub fn points_after(&self, after: Option<i64>) -> impl Iterator<Item = Point> + '_ {
        let (first, skip) = match after {
            None => (0, 0),
            Some(t) => {
                let first = self.chunks.partition_point(|c| c[c.len() - 1].0 <= t);
                let skip = self.chunks.get(first).map_or(0, |c| c.partition_point(|p| p.0 <= t));
                (first, skip)
            }
        };
        self.chunks[first..]
            .iter()
            .enumerate()
            .flat_map(move |(n, c)| c[if n == 0 { skip } else { 0 }..].iter().copied())
    }

    /// Bytes allocated for points (capacity, not length): for memory figures.
    pub fn allocated_bytes(&self) -> usize {
        let points: usize = self.chunks.iter().map(|c| c.capacity()).sum();
        points * std::mem::size_of::<Point>() + self.chunks.capacity() * std::mem::size_of::<Vec<Point>>()
    }
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
        assert_eq!(s.chunks.len(), 11);
        assert!(s.chunks[..10].iter().all(|c| c.len() == CHUNK_POINTS));
        // At most one partly filled chunk of slack.
        assert!(s.allocated_bytes() <= (n + CHUNK_POINTS) * 16 + 16 * 24);
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
    fn memory_stays_near_sixteen_bytes_a_point_in_common_orders() {
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
        assert!(in_order < 16.5, "in order: {in_order}");
        assert!(late < 17.0, "late points: {late}");
        assert!(descending < 16.5, "descending: {descending}");
        assert!(random < 32.0, "random: {random}");
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
        assert_eq!(st.get("palm.cpu").map(Series::len), Some(3));
        assert!(st.get("nothing").is_none());
    }

    /// Every point, the chunk invariants, and `points_after` at every chunk
    /// boundary, against the model.
    fn check_series(s: &Series, model: &BTreeMap<i64, f64>, rng: &mut XorShift) {
        let want: Vec<Point> = model.iter().map(|(&t, &v)| (t, v)).collect();
        assert_eq!(s.iter().collect::<Vec<_>>(), want);
        let mut prev: Option<i64> = None;
        for c in &s.chunks {
            assert!(!c.is_empty() && c.len() <= CHUNK_POINTS, "len {}", c.len());
            assert!(c.capacity() <= CHUNK_POINTS, "capacity {}", c.capacity());
            for p in c {
                assert!(prev.is_none_or(|q| q < p.0), "unsorted or overlapping");
                prev = Some(p.0);
            }
        }
        assert_eq!(s.len(), model.len());
        let mut afters = vec![i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1, -1, 0];
        for c in &s.chunks {
            for t in [c[0].0, c[c.len() - 1].0] {
                afters.extend([t.saturating_sub(1), t, t.saturating_add(1)]);
            }
        }
        afters.extend((0..20).map(|_| rng.next() as i64));
        for after in afters {
            let want: Vec<Point> = model
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .map(|(&t, &v)| (t, v))
                .collect();
            assert_eq!(s.points_after(Some(after)).collect::<Vec<_>>(), want, "after {after}");
        }
        assert_eq!(s.points_after(None).count(), model.len());
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
            s.chunks.len() < s.len() / 64,
            "{} chunks for {} points",
            s.chunks.len(),
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
            s.chunks.len() < s.len() / 32,
            "{} chunks for {} points",
            s.chunks.len(),
            s.len()
        );
    }
}
