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
pub mod head;
mod index;
pub mod mix;

pub use crate::config::OnFull;
use chunk::{Chunk, Decoded};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A stored measurement: (timestamp, value).
pub type Point = (i64, f64);

/// Points a head holds before it is sealed into a chunk: 480, 80 minutes
/// at a 10 s interval. Prometheus seals at 120 samples; here each chunk also
/// costs a 40-byte `Block` in its series' list and an allocation, some 60
/// bytes: 0.25 B a point at 240, 0.12 at 480, which took a server holding
/// the mix from 2.15 to 1.94 B of RSS a point (BENCHMARKS.md, issue 13),
/// while the bits themselves shrink by only a few percent. The head is
/// packed ([`head`]), so a larger chunk no longer costs a plain head of
/// 16 bytes a point; it costs a dearer late point (it re-encodes up to 2
/// × CHUNK_POINTS), more held but expired points (a chunk a series at
/// most), and a short `range` decodes up to two chunks.
pub const CHUNK_POINTS: usize = 480;

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

    /// Seals a thawed block; returns how much its allocation grew by.
    fn seal(&mut self) -> isize {
        let Block::Thawed(points) = self else {
            return 0;
        };
        let before = points.capacity() * std::mem::size_of::<Point>();
        *self = Block::Sealed(encode(points));
        self.heap_bytes() as isize - before as isize
    }
}

/// The open end of a series: the points after its last block.
#[derive(Debug, Clone)]
enum Head {
    /// Appended as bits as they arrive (in order, as metrics mostly do): a
    /// few bits a point instead of 16, which is most of what a short series
    /// costs.
    Packed(head::Packed),
    /// Plain points, sorted: a head that took a point out of order or an
    /// overwrite (other than a retry of its last point) turns plain until
    /// it is sealed, so late points cost an insert each rather than a
    /// re-encoding of the head each.
    Plain(Vec<Point>),
}

impl Default for Head {
    fn default() -> Self {
        Head::Packed(head::Packed::default())
    }
}

impl Head {
    fn len(&self) -> usize {
        match self {
            Head::Packed(p) => p.len(),
            Head::Plain(points) => points.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn first_ts(&self) -> Option<i64> {
        match self {
            Head::Packed(p) => p.first_ts(),
            Head::Plain(points) => points.first().map(|p| p.0),
        }
    }

    fn last_ts(&self) -> Option<i64> {
        match self {
            Head::Packed(p) => p.last().map(|p| p.0),
            Head::Plain(points) => points.last().map(|p| p.0),
        }
    }

    #[cfg(test)]
    fn points(&self) -> Vec<Point> {
        match self {
            Head::Packed(p) => p.to_vec(),
            Head::Plain(points) => points.clone(),
        }
    }

    /// The points as a plain list, turning a packed head plain.
    fn plain(&mut self) -> &mut Vec<Point> {
        if let Head::Packed(p) = self {
            *self = Head::Plain(p.to_vec());
        }
        match self {
            Head::Plain(points) => points,
            Head::Packed(_) => unreachable!("turned plain just above"),
        }
    }

    /// Takes the points out, leaving an empty packed head (that keeps a
    /// packed one's allocation for the points to come: see
    /// [`head::Packed::clear`]).
    fn take(&mut self) -> Vec<Point> {
        match self {
            Head::Packed(p) => {
                let points = p.to_vec();
                p.clear();
                points
            }
            Head::Plain(_) => match std::mem::take(self) {
                Head::Plain(points) => points,
                Head::Packed(_) => unreachable!("matched plain just above"),
            },
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Head::Packed(p) => p.heap_bytes(),
            Head::Plain(points) => points.capacity() * std::mem::size_of::<Point>(),
        }
    }
}

thread_local! {
    /// The buffer [`Series::range_runs`] decodes chunks into, and a full
    /// head is decoded into to be sealed, kept from use to use: a fresh one
    /// is zeroed for its first chunk (7,680 bytes for 480 points), which
    /// cost a short range more than its points did. The server reads and
    /// writes on one thread; it holds one chunk's points.
    static DECODED: Cell<Decoded> = Cell::new(Decoded::default());
}

/// Runs `work` with the thread's decode buffer ([`DECODED`]; a fresh one
/// if it is taken, as by a read that `work` is called from).
fn with_decoded<T>(work: impl FnOnce(&mut Decoded) -> T) -> T {
    let mut buf = DECODED.take();
    let result = work(&mut buf);
    DECODED.set(buf);
    result
}

/// The points of a series from a timestamp on, in order: a sealed chunk or
/// a packed head is decoded whole into a buffer ([`Chunk::decode_into`], a
/// tight loop per value coding) and handed out from there, plain points
/// straight from where they are, so that the next point costs a bounds
/// check (the buffer is allocated once, for the first bits read).
#[derive(Default)]
struct SeriesPoints<'a> {
    /// Decoded points, handed out from `pos`.
    buf: Decoded,
    pos: usize,
    /// Plain points being handed out (a thawed block, a plain head).
    plain: &'a [Point],
    /// What is left to read.
    blocks: std::slice::Iter<'a, Block>,
    head: Option<&'a Head>,
    /// Points before this are skipped.
    from: i64,
}

impl SeriesPoints<'_> {
    /// The next point once the buffer is spent: from the plain points or
    /// the packed head being read, or from the next block or the head.
    fn next_slow(&mut self) -> Option<Point> {
        loop {
            if let Some((&point, rest)) = self.plain.split_first() {
                self.plain = rest;
                return Some(point);
            }
            let from = self.from;
            let after = |points: &[Point]| points.partition_point(|p| p.0 < from);
            self.buf.clear();
            match self.blocks.next() {
                Some(Block::Sealed(chunk)) => {
                    chunk
                        .decode_to(&mut self.buf)
                        .expect("a chunk the store encoded decodes");
                }
                Some(Block::Thawed(points)) => self.plain = &points[after(points)..],
                None => match self.head.take()? {
                    Head::Plain(points) => self.plain = &points[after(points)..],
                    Head::Packed(p) => p.decode_to(&mut self.buf),
                },
            }
            self.pos = after(self.buf.points());
            if let Some(&point) = self.buf.points().get(self.pos) {
                self.pos += 1;
                return Some(point);
            }
        }
    }
}

impl Iterator for SeriesPoints<'_> {
    type Item = Point;

    #[inline]
    fn next(&mut self) -> Option<Point> {
        if let Some(&point) = self.buf.points().get(self.pos) {
            self.pos += 1;
            return Some(point);
        }
        self.next_slow()
    }
}

/// The points of one key, ascending by timestamp, at most one per timestamp.
#[derive(Debug, Default, Clone)]
pub struct Series {
    /// Sorted, non-overlapping, each of at most MAX_BLOCK_POINTS points; at
    /// most one thawed.
    blocks: Vec<Block>,
    /// Sorted, fewer than CHUNK_POINTS points, all after the last block.
    head: Head,
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
        self.insert_sized(timestamp, value).0
    }

    /// [`Series::insert`], and how much the series' allocation grew by
    /// (negative: shrank), for the store's running total: the head's and
    /// the block list's capacities, and the blocks the put changed, each
    /// measured as it changes (no pass over the other blocks).
    pub fn insert_sized(&mut self, timestamp: i64, value: f64) -> (Option<f64>, isize) {
        if self.blocks.last().is_none_or(|b| b.max_ts() < timestamp) {
            if let Head::Packed(p) = &mut self.head {
                // The common case for metrics: a point newer than all
                // stored ones, appended to the head's bits.
                if p.last().is_none_or(|(t, _)| t < timestamp) {
                    let grown = p
                        .push(timestamp, value)
                        .expect("after the last point, under a chunk's count");
                    return (None, grown as isize + self.seal_full_head());
                }
                // A client's retry of the last point leaves the head packed.
                if p.last()
                    .is_some_and(|(t, v)| t == timestamp && v.to_bits() == value.to_bits())
                {
                    return (Some(value), 0);
                }
            }
        }
        let fixed = self.fixed_bytes() as isize;
        let (replaced, blocks) = self.insert_into_blocks(timestamp, value);
        (replaced, blocks + self.fixed_bytes() as isize - fixed)
    }

    /// Seals the head into a chunk if it is full; returns how much the
    /// allocation grew by.
    fn seal_full_head(&mut self) -> isize {
        if self.head.len() < CHUNK_POINTS {
            return 0;
        }
        let fixed = self.fixed_bytes() as isize;
        let mut grown = self.seal_thawed();
        let chunk = match &mut self.head {
            Head::Packed(p) => with_decoded(|decoded| p.seal(decoded)),
            Head::Plain(_) => Some(encode(&self.head.take())),
        };
        let chunk = Block::Sealed(chunk.expect("a full head's points make a chunk"));
        grown += chunk.heap_bytes() as isize;
        self.blocks.push(chunk);
        grown + self.fixed_bytes() as isize - fixed
    }

    /// The work of [`Series::insert_sized`] but its packed appends; the
    /// bytes are the blocks' own (and a sealed head's).
    fn insert_into_blocks(&mut self, timestamp: i64, value: f64) -> (Option<f64>, isize) {
        if self.blocks.last().is_none_or(|b| b.max_ts() < timestamp) {
            let head = self.head.plain();
            if head.last().is_none_or(|&(t, _)| t < timestamp) {
                head.push((timestamp, value));
            } else {
                match head.binary_search_by_key(&timestamp, |&(t, _)| t) {
                    Ok(i) => return (Some(std::mem::replace(&mut head[i].1, value)), 0),
                    Err(i) => head.insert(i, (timestamp, value)),
                }
            }
            let mut grown = 0;
            if self.head.len() >= CHUNK_POINTS {
                grown += self.seal_thawed();
                let chunk = Block::Sealed(encode(&self.head.take()));
                grown += chunk.heap_bytes() as isize;
                self.blocks.push(chunk);
            }
            return (None, grown);
        }
        let idx = self.covering_block(timestamp);
        let mut grown = 0;
        if let Block::Sealed(chunk) = &self.blocks[idx] {
            // Rewriting a point with the same bits (a client's retry) leaves
            // the chunk sealed.
            let found = chunk.iter().find(|p| p.0 >= timestamp);
            if found.is_some_and(|p| p.0 == timestamp && p.1.to_bits() == value.to_bits()) {
                return (Some(value), 0);
            }
            // At most one block thawed: this one.
            grown += self.seal_thawed();
        }
        let block = std::mem::replace(&mut self.blocks[idx], Block::Thawed(Vec::new()));
        grown -= block.heap_bytes() as isize;
        let mut points = block.into_points();
        let replaced = match points.binary_search_by_key(&timestamp, |&(t, _)| t) {
            Ok(i) => Some(std::mem::replace(&mut points[i].1, value)),
            Err(i) => {
                points.insert(i, (timestamp, value));
                None
            }
        };
        if points.len() > MAX_BLOCK_POINTS {
            let (low, high) = points.split_at(points.len() / 2);
            let (low, high) = (Block::Sealed(encode(low)), Block::Sealed(encode(high)));
            grown += (low.heap_bytes() + high.heap_bytes()) as isize;
            self.blocks[idx] = low;
            self.blocks.insert(idx + 1, high);
        } else {
            let thawed = Block::Thawed(points);
            grown += thawed.heap_bytes() as isize;
            self.blocks[idx] = thawed;
        }
        (replaced, grown)
    }

    /// Seals the thawed block if there is one; returns how much the
    /// allocation grew by.
    fn seal_thawed(&mut self) -> isize {
        self.blocks.iter_mut().map(Block::seal).sum()
    }

    /// [`Series::remove`], and how much the allocation grew by.
    pub fn remove_sized(&mut self, timestamp: i64) -> (bool, isize) {
        let before = self.allocated_bytes();
        let removed = self.remove(timestamp);
        (removed, self.allocated_bytes() as isize - before as isize)
    }

    /// Whether some point is older than `horizon`, or the series is empty.
    fn has_expired(&self, horizon: i64) -> bool {
        match (self.blocks.first(), self.head.first_ts()) {
            (Some(block), _) => block.max_ts() < horizon,
            (None, Some(first)) => first < horizon,
            (None, None) => true,
        }
    }

    /// The last timestamp of the oldest block: the order in which
    /// `--on-memory-full drop-oldest` drops blocks across series. None
    /// without blocks.
    fn first_block_max(&self) -> Option<i64> {
        self.blocks.first().map(Block::max_ts)
    }

    /// Drops the oldest block; returns its points and the bytes freed.
    fn drop_first_block(&mut self) -> Option<(usize, usize)> {
        if self.blocks.is_empty() {
            return None;
        }
        let block = self.blocks.remove(0);
        Some((block.len(), block.heap_bytes()))
    }

    /// Frees what is older than `horizon` as whole blocks: every block whose
    /// last point is older, and then, if no block is left, the head's older
    /// points (cut from a plain head in place, a packed one packed again).
    /// A block that straddles the horizon stays until its last point is
    /// older (at most one per series: blocks do not overlap); reads filter
    /// its older points. Stops after `budget` blocks. Returns the points
    /// freed, the bytes freed, the blocks dropped, and whether it stopped
    /// for the budget.
    fn expire(&mut self, horizon: i64, budget: usize) -> (usize, isize, usize, bool) {
        let expired = self.blocks.partition_point(|b| b.max_ts() < horizon);
        let dropped = expired.min(budget);
        let (mut points, mut bytes) = (0, 0);
        for block in self.blocks.drain(..dropped) {
            points += block.len();
            bytes += block.heap_bytes() as isize;
        }
        if dropped < expired {
            return (points, bytes, dropped, true);
        }
        if self.blocks.is_empty() && self.head.first_ts().is_some_and(|t| t < horizon) {
            let before = self.head.heap_bytes() as isize;
            match &mut self.head {
                Head::Plain(head) => {
                    let old = head.partition_point(|p| p.0 < horizon);
                    head.drain(..old);
                    points += old;
                }
                Head::Packed(p) => {
                    let mut kept = head::Packed::default();
                    for (t, v) in p.iter().filter(|p| p.0 >= horizon) {
                        kept.push(t, v).expect("in order, fewer than before");
                    }
                    points += p.len() - kept.len();
                    *p = kept;
                }
            }
            bytes += before - self.head.heap_bytes() as isize;
        }
        (points, bytes, dropped, false)
    }

    /// Removes the point at `timestamp`, if there is one (undoing a put whose
    /// log write failed). A block left empty is dropped.
    pub fn remove(&mut self, timestamp: i64) -> bool {
        if self.blocks.last().is_none_or(|b| b.max_ts() < timestamp) {
            if let Head::Packed(p) = &self.head {
                if p.last().is_none_or(|(t, _)| t < timestamp) {
                    return false;
                }
            }
            let head = self.head.plain();
            let Ok(i) = head.binary_search_by_key(&timestamp, |&(t, _)| t) else {
                return false;
            };
            head.remove(i);
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
        match after {
            None => self.points_from(i64::MIN),
            Some(after) => match after.checked_add(1) {
                Some(from) => self.points_from(from),
                None => SeriesPoints::default(),
            },
        }
    }

    /// The points with `from <= timestamp <= to`, ascending. Chunks wholly
    /// before `from` are skipped by a binary search over their time bounds,
    /// undecoded, and the walk stops at the first point past `to`, so a short
    /// window of a long series costs about its own points.
    pub fn range(&self, from: i64, to: i64) -> impl Iterator<Item = Point> + '_ {
        self.points_from(from).take_while(move |&(t, _)| t <= to)
    }

    /// The points with `from <= timestamp <= to`, ascending, handed to
    /// `visit` in runs until it returns false: each sealed chunk or packed
    /// head decoded whole into one buffer, plain points where they lie. What
    /// [`Series::range`] yields, for a reader that formats every point: a
    /// loop over a slice costs it no iterator step per point (a `get` of a
    /// 100-point head spent a fifth of its store time there). Chunks outside
    /// the window are skipped by their bounds, undecoded.
    pub fn range_runs(&self, from: i64, to: i64, mut visit: impl FnMut(&[Point]) -> bool) {
        // Returns whether to go on: the run did not reach past `to`, and
        // `visit` asked for more.
        let mut run = |points: &[Point]| {
            let start = points.partition_point(|p| p.0 < from);
            let end = points.partition_point(|p| p.0 <= to).max(start);
            (start == end || visit(&points[start..end])) && end == points.len()
        };
        with_decoded(|buf| self.range_runs_in(buf, from, to, &mut run));
    }

    /// [`Series::range_runs`] with `buf` to decode into; `run` is handed
    /// each run and says whether to go on.
    fn range_runs_in(&self, buf: &mut Decoded, from: i64, to: i64, run: &mut impl FnMut(&[Point]) -> bool) {
        let first = self.blocks.partition_point(|b| b.max_ts() < from);
        for block in &self.blocks[first..] {
            if block.min_ts() > to {
                return;
            }
            let go_on = match block {
                Block::Sealed(chunk) => {
                    // Up to the window's end only.
                    chunk
                        .decode_until_to(to, buf)
                        .expect("a chunk the store encoded decodes");
                    run(buf.points())
                }
                Block::Thawed(points) => run(points),
            };
            if !go_on {
                return;
            }
        }
        if self.head.first_ts().is_some_and(|t| t <= to) {
            match &self.head {
                Head::Plain(points) => run(points),
                Head::Packed(p) => {
                    p.decode_to(buf);
                    run(buf.points())
                }
            };
        }
    }

    /// The points from timestamp `from` on (a binary search finds the first
    /// block that has any).
    fn points_from(&self, from: i64) -> SeriesPoints<'_> {
        let first = self.blocks.partition_point(|b| b.max_ts() < from);
        SeriesPoints {
            blocks: self.blocks[first..].iter(),
            head: self.head.last_ts().is_some_and(|t| t >= from).then_some(&self.head),
            from,
            ..SeriesPoints::default()
        }
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
        // A packed head is handed out plain, as a plain one is: a snapshot
        // stores it as points, as it always has.
        let unpacked: Vec<Point>;
        let head = match &self.head {
            Head::Plain(points) => &points[points.partition_point(|p| before(p.0))..],
            Head::Packed(p) => {
                unpacked = p.iter().filter(|p| !before(p.0)).collect();
                &unpacked
            }
        };
        match head.last() {
            Some(last) if !visit(Part::Points(head)) => Some(last.0),
            _ => None,
        }
    }

    /// Appends a sealed chunk whose points all come after the series'
    /// (loading a snapshot), keeping its bits; hands it back if it does not
    /// fit there or is larger than a block may be. A head already there is
    /// sealed first, so the blocks stay in order. Returns how much the
    /// series' allocation grew by.
    fn adopt(&mut self, chunk: Chunk) -> Result<isize, Chunk> {
        let last = self.head.last_ts().or(self.blocks.last().map(Block::max_ts));
        if chunk.len() > MAX_BLOCK_POINTS || last.is_some_and(|t| t >= chunk.min_ts()) {
            return Err(chunk);
        }
        let fixed = self.fixed_bytes() as isize;
        let mut grown = self.seal_thawed();
        if !self.head.is_empty() {
            let head = Block::Sealed(encode(&self.head.take()));
            grown += head.heap_bytes() as isize;
            self.blocks.push(head);
        }
        let chunk = Block::Sealed(chunk);
        grown += chunk.heap_bytes() as isize;
        self.blocks.push(chunk);
        Ok(grown + self.fixed_bytes() as isize - fixed)
    }

    /// Bytes allocated for points (capacity, not length): for memory figures.
    pub fn allocated_bytes(&self) -> usize {
        let blocks: usize = self.blocks.iter().map(Block::heap_bytes).sum();
        blocks + self.fixed_bytes()
    }

    /// The block list's and the head's allocations, without the blocks' own.
    fn fixed_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Block>() + self.head.heap_bytes()
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

/// What the store keeps: `--retention`, `--max-memory` and
/// `--on-memory-full`. The default (`config`'s) keeps every point, with no
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Points older than this (by their timestamp, against the wall clock)
    /// are expired. None: kept forever.
    pub retention: Option<std::time::Duration>,
    /// Bytes the store may hold, as [`Store::allocated_bytes`] counts them.
    /// None: no limit.
    pub max_bytes: Option<u64>,
    pub on_full: OnFull,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retention: crate::config::DEFAULT_RETENTION,
            max_bytes: crate::config::DEFAULT_MAX_MEMORY,
            on_full: crate::config::DEFAULT_ON_MEMORY_FULL,
        }
    }
}

/// Why the store did not take a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its timestamp is older than the retention.
    Expired,
    /// It would take the store past its memory limit.
    MemoryFull,
}

/// What the store has freed, for `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freed {
    /// Points freed because they were older than the retention (or were not
    /// loaded at start-up for that reason).
    pub expired_points: u64,
    /// Blocks dropped by `--on-memory-full drop-oldest`, and their points.
    pub dropped_chunks: u64,
    pub dropped_points: u64,
}

/// The drop-oldest index's entries cost about this: a `BTreeSet` node holds
/// up to 11 entries of 24 bytes in about 290 bytes, and keys inserted in
/// order leave nodes half full (about 6 entries), so about 48 bytes each.
const OLDEST_ENTRY_BYTES: usize = 48;
/// An `Arc<str>` key's allocation beyond its bytes: the two reference counts.
const KEY_HEADER_BYTES: usize = 16;
/// Blocks freed or series visited by one slice of [`Store::expire`]: a
/// visit is a bounds check (a few ns) and a block freed one deallocation
/// (tens of ns), so a slice stays well under a millisecond; a million
/// series take about 120 slices.
pub const EXPIRE_SLICE: usize = 8192;

use index::{Id, KeyIndex};

/// Fewest recent keys [`Order`] merges into its sorted run at once.
const RECENT_MIN: usize = 256;
/// Fewest removed series [`Order`] keeps before it purges them.
const PURGE_MIN: usize = 64;

/// The ids of the store's series in ascending byte order of their keys,
/// for walks (`get *`, snapshots, expiry): 4 bytes a series where an
/// ordered map of the keys took about 48.
///
/// A sorted run, and a short sorted run of the keys added since it was
/// last merged: a new key is inserted into the short one (moving at most a
/// few thousand ids), which is merged into the long one when it reaches
/// about 4·√keys (moving every id, once per that many new keys: some 1.5 KiB
/// of copying a new key at a million keys). A walk merges the two runs as
/// it goes, and finds where to resume by a binary search in each, so a
/// walk resumed after any key finds its place in O(log keys) however many
/// keys arrived in between.
///
/// A removed series stays in the runs, skipped by walks (its series is
/// empty, and a stored series never is), its key kept so that the runs
/// stay sorted, and its id not reused, until the removed ones are more
/// than an eighth of the rest: then one pass drops them all from the runs
/// and frees their ids and keys.
#[derive(Debug, Default)]
struct Order {
    /// Sorted.
    main: Vec<Id>,
    /// Sorted; at most `recent_max(main.len())`.
    recent: Vec<Id>,
    /// Removed series still in the runs.
    dead: Vec<Id>,
}

/// The key of `id`, which is in the order (removed or not).
fn key_of(keys: &[Option<Arc<str>>], id: Id) -> &str {
    keys[id as usize].as_deref().expect("an id in the order has its key")
}

impl Order {
    fn recent_max(main: usize) -> usize {
        RECENT_MIN.max(4 * main.isqrt())
    }

    /// Places the id of a new key.
    fn insert(&mut self, keys: &[Option<Arc<str>>], id: Id) {
        let key = key_of(keys, id);
        let at = self.recent.partition_point(|&other| key_of(keys, other) < key);
        self.recent.insert(at, id);
        if self.recent.len() > Self::recent_max(self.main.len()) {
            self.merge(keys);
        }
    }

    /// Merges the recent run into the main one: a binary search per recent
    /// key, and one copy of the main run.
    fn merge(&mut self, keys: &[Option<Arc<str>>]) {
        let mut merged = Vec::with_capacity(self.main.len() + self.recent.len());
        let mut from = 0;
        for &id in &self.recent {
            let key = key_of(keys, id);
            let at = from + self.main[from..].partition_point(|&other| key_of(keys, other) <= key);
            merged.extend_from_slice(&self.main[from..at]);
            merged.push(id);
            from = at;
        }
        merged.extend_from_slice(&self.main[from..]);
        self.main = merged;
        self.recent.clear();
    }

    /// Notes a removed series; true when the removed ones are to be purged.
    fn remove(&mut self, id: Id) -> bool {
        self.dead.push(id);
        let live = self.main.len() + self.recent.len() - self.dead.len();
        self.dead.len() > PURGE_MIN.max(live / 8)
    }

    /// Drops the removed series from the runs; returns their ids.
    fn purge(&mut self, series: &[Series]) -> Vec<Id> {
        let live = |id: &Id| !series[*id as usize].is_empty();
        self.main.retain(live);
        self.recent.retain(live);
        self.main.shrink_to_fit();
        std::mem::take(&mut self.dead)
    }

    /// The ids from the first key at or after `start` on (all for None), in
    /// key order, removed ones included.
    fn from<'a>(&'a self, keys: &'a [Option<Arc<str>>], start: Option<&str>) -> OrderIter<'a> {
        let at = |run: &'a [Id]| match start {
            None => run,
            Some(start) => &run[run.partition_point(|&id| key_of(keys, id) < start)..],
        };
        OrderIter {
            keys,
            main: at(&self.main),
            recent: at(&self.recent),
        }
    }

    fn bytes(&self) -> usize {
        (self.main.capacity() + self.recent.capacity() + self.dead.capacity()) * std::mem::size_of::<Id>()
    }
}

/// The two runs of an [`Order`] merged.
struct OrderIter<'a> {
    keys: &'a [Option<Arc<str>>],
    main: &'a [Id],
    recent: &'a [Id],
}

impl Iterator for OrderIter<'_> {
    type Item = Id;

    #[inline]
    fn next(&mut self) -> Option<Id> {
        let take_main = match (self.main.first(), self.recent.first()) {
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
            (Some(&a), Some(&b)) => key_of(self.keys, a) <= key_of(self.keys, b),
        };
        let run = if take_main { &mut self.main } else { &mut self.recent };
        let (&id, rest) = run.split_first()?;
        *run = rest;
        Some(id)
    }
}

/// Every series, by key.
#[derive(Debug)]
pub struct Store {
    /// The series; an index here is a series' id. The id of a series
    /// removed (expired, deleted or dropped empty) is reused by a new key
    /// once [`Order`] has purged it.
    series: Vec<Series>,
    /// The key of each id; None for an id free for a new key.
    keys: Vec<Option<Arc<str>>>,
    /// The ids of the stored series by their keys, for puts and gets: one
    /// hash lookup, and 9 bytes a bucket where a map of the keys to their
    /// ids took 25 (the key is in `keys`, not there).
    ids: KeyIndex,
    /// The ids in key order, for walks.
    order: Order,
    points: usize,
    /// Ids free for new keys.
    free: Vec<Id>,
    /// Sum of [`Series::allocated_bytes`], kept as puts change it.
    series_bytes: usize,
    /// The keys' allocations.
    key_bytes: usize,
    policy: Policy,
    /// Points with a timestamp below this are expired (i64::MIN: none).
    horizon: i64,
    /// Under drop-oldest: (last timestamp of its oldest block, key) of every
    /// series with a block, so the oldest block of all is the first entry,
    /// found and dropped in O(log series) however many series there are (a
    /// scan for it would cost O(series) a block). Kept only under
    /// drop-oldest: it costs about 48 bytes a series, and a put pays for
    /// it only when its series' oldest block changes.
    oldest: Option<BTreeSet<(i64, Arc<str>)>>,
    freed: Freed,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            series: Vec::new(),
            keys: Vec::new(),
            ids: KeyIndex::default(),
            order: Order::default(),
            points: 0,
            free: Vec::new(),
            series_bytes: 0,
            key_bytes: 0,
            policy: Policy::default(),
            horizon: i64::MIN,
            oldest: None,
            freed: Freed::default(),
        }
    }
}

impl Store {
    /// An empty store that keeps every point.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that keeps what `policy` says, at Unix time `now`.
    pub fn with_policy(policy: Policy, now: i64) -> Self {
        let mut store = Store {
            policy,
            oldest: (policy.on_full == OnFull::DropOldest).then(BTreeSet::new),
            ..Store::default()
        };
        store.set_now(now);
        store
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The id of the series of `key`, if stored.
    #[inline]
    fn id(&self, key: &str) -> Option<usize> {
        let found = self.ids.find(&self.keys, key, self.ids.hash(key));
        found.map(|id| id as usize)
    }

    /// The oldest timestamp kept: older points are expired, never returned
    /// and freed as their blocks age out (i64::MIN without a retention).
    pub fn horizon(&self) -> i64 {
        self.horizon
    }

    /// Moves the horizon to `now` minus the retention (never back: a clock
    /// stepped back does not bring expired points back to life).
    pub fn set_now(&mut self, now: i64) {
        if let Some(retention) = self.policy.retention {
            let seconds = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
            self.horizon = self.horizon.max(now.saturating_sub(seconds));
        }
    }

    /// What the store has freed so far.
    pub fn freed(&self) -> Freed {
        self.freed
    }

    /// Stores one point for a client, unless it is expired or would take the
    /// store past its memory limit; under drop-oldest, oldest blocks are
    /// dropped to make room first.
    #[inline]
    pub fn try_put(&mut self, key: &str, timestamp: i64, value: f64) -> Result<Option<f64>, Refusal> {
        if timestamp < self.horizon {
            return Err(Refusal::Expired);
        }
        if let Some(max) = self.policy.max_bytes {
            self.make_room(key, max)?;
        }
        Ok(self.put(key, timestamp, value))
    }

    /// Room for one put of `key`: a point for a key stored already, the key
    /// and its entries (and any growth of the tables) for a new one. The
    /// store may still pass the limit by what one put adds beyond its
    /// point: a chunk sealed (under 9 KiB), a packed head's growth (half again,
    /// under 3 KiB) or the doubling of its series' block list.
    fn make_room(&mut self, key: &str, max: u64) -> Result<(), Refusal> {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        loop {
            let held = self.allocated_bytes();
            let point = std::mem::size_of::<Point>();
            // Checked without a lookup while a new key would fit too.
            if held + self.new_key_bytes(key) + point <= max {
                return Ok(());
            }
            if held + point <= max && self.id(key).is_some() {
                return Ok(());
            }
            if self.policy.on_full == OnFull::Reject || !self.drop_oldest_block() {
                return Err(Refusal::MemoryFull);
            }
        }
    }

    /// What a new `key` would add: its allocation, its entries, and the
    /// growth of any table that is full.
    fn new_key_bytes(&self, key: &str) -> usize {
        let mut bytes = key.len() + KEY_HEADER_BYTES + std::mem::size_of::<Id>();
        if self.free.is_empty() && self.series.len() == self.series.capacity() {
            let slot = std::mem::size_of::<Series>() + std::mem::size_of::<Option<Arc<str>>>();
            bytes += self.series.capacity().max(4) * slot;
        }
        bytes + self.ids.growth_bytes()
    }

    /// Bytes the store holds: every series' points (chunks, thawed blocks,
    /// heads and block lists at their capacity), the keys, the series table
    /// and the indexes. Kept up to date as points come and go (O(1) here),
    /// not recounted; the tables are estimated from their capacities.
    /// Allocator overhead is not counted: RSS runs somewhat above this.
    pub fn allocated_bytes(&self) -> usize {
        self.series_bytes
            + self.key_bytes
            + self.series.capacity() * std::mem::size_of::<Series>()
            + self.keys.capacity() * std::mem::size_of::<Option<Arc<str>>>()
            + self.free.capacity() * std::mem::size_of::<Id>()
            + self.ids.bytes()
            + self.order.bytes()
            + self.oldest.as_ref().map_or(0, |o| o.len() * OLDEST_ENTRY_BYTES)
    }

    /// The bytes of the series' points alone (chunks, thawed blocks, heads,
    /// block lists): `store.chunk_bytes`.
    pub fn chunk_bytes(&self) -> usize {
        self.series_bytes
    }

    /// Stores one point (last write wins); returns the value it replaced.
    /// Allocates only for a new key. No policy applies (undoing a put, tests).
    #[inline]
    pub fn put(&mut self, key: &str, timestamp: i64, value: f64) -> Option<f64> {
        let id = self.id_or_insert(key);
        let series = &mut self.series[id];
        let first = series.first_block_max();
        let (replaced, grown) = series.insert_sized(timestamp, value);
        self.series_bytes = self.series_bytes.wrapping_add_signed(grown);
        self.points += usize::from(replaced.is_none());
        if self.oldest.is_some() {
            self.reindex(key, first);
        }
        replaced
    }

    /// Loads one point at start-up (a replayed log): an expired one is
    /// skipped, and under drop-oldest the oldest blocks make room as they
    /// did before the restart. Under reject nothing is refused: the put was
    /// acknowledged, and the store may start above its limit.
    pub fn load(&mut self, key: &str, timestamp: i64, value: f64) {
        if timestamp < self.horizon {
            self.freed.expired_points += 1;
            return;
        }
        self.put(key, timestamp, value);
        self.shed();
    }

    /// Stores points of one key as [`Store::load`] does, looking the key up
    /// once (loading a snapshot).
    pub fn put_points(&mut self, key: &str, points: impl IntoIterator<Item = Point>) {
        let horizon = self.horizon;
        let id = self.id_or_insert(key);
        let series = &mut self.series[id];
        let first = series.first_block_max();
        let (mut added, mut grown, mut expired) = (0, 0, 0);
        for (timestamp, value) in points {
            if timestamp < horizon {
                expired += 1;
                continue;
            }
            let (replaced, g) = series.insert_sized(timestamp, value);
            added += usize::from(replaced.is_none());
            grown += g;
        }
        self.series_bytes = self.series_bytes.wrapping_add_signed(grown);
        self.points += added;
        self.freed.expired_points += expired;
        if self.oldest.is_some() {
            self.reindex(key, first);
        }
        if self.series[id].is_empty() {
            self.remove_series(key);
        }
        self.shed();
    }

    /// Under drop-oldest, drops oldest blocks while the store is over its
    /// limit.
    fn shed(&mut self) {
        if let (Some(max), OnFull::DropOldest) = (self.policy.max_bytes, self.policy.on_full) {
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            while self.allocated_bytes() > max && self.drop_oldest_block() {}
        }
    }

    /// Removes one point, if stored; a series left empty is removed.
    pub fn remove(&mut self, key: &str, timestamp: i64) {
        let Some(id) = self.id(key) else {
            return;
        };
        let series = &mut self.series[id];
        let first = series.first_block_max();
        let (removed, grown) = series.remove_sized(timestamp);
        self.series_bytes = self.series_bytes.wrapping_add_signed(grown);
        self.points -= usize::from(removed);
        if self.oldest.is_some() {
            self.reindex(key, first);
        }
        if self.series[id].is_empty() {
            self.remove_series(key);
        }
    }

    /// Stores the points of a sealed chunk read from a snapshot, as
    /// [`Store::load`] does. The chunk is decoded once to check it (bits
    /// that are not a chunk are refused, and nothing of them stored); a
    /// chunk wholly older than the horizon is skipped (its points counted
    /// as expired); otherwise it is kept as it is if it comes after every
    /// point of the series, as a snapshot's chunks do, and its points not
    /// expired are inserted one by one if not. Returns its point count.
    pub fn adopt_chunk(&mut self, key: &str, chunk: Chunk) -> Result<usize, chunk::DecodeError> {
        let mut points = chunk.iter();
        let count = points.by_ref().count();
        if let Some(e) = points.error() {
            return Err(e);
        }
        let horizon = self.horizon;
        if chunk.max_ts() < horizon {
            self.freed.expired_points += count as u64;
            return Ok(count);
        }
        let id = self.id_or_insert(key);
        let series = &mut self.series[id];
        let first = series.first_block_max();
        match series.adopt(chunk) {
            // A chunk that straddles the horizon is kept whole, as a
            // stored one is: reads filter its expired points.
            Ok(grown) => {
                self.series_bytes = self.series_bytes.wrapping_add_signed(grown);
                self.points += count;
                if self.oldest.is_some() {
                    self.reindex(key, first);
                }
                self.shed();
            }
            Err(chunk) => self.put_points(key, chunk.iter()),
        }
        Ok(count)
    }

    /// Takes every point of `key` out (a `delete`), returning them; the
    /// series is removed like one whose points all expired (its id goes to
    /// the next new key, and a paused [`Store::walk`] goes on with the next
    /// key).
    pub fn take_series(&mut self, key: &str) -> Option<Series> {
        let id = self.id(key)?;
        let first = self.series[id].first_block_max();
        let series = std::mem::take(&mut self.series[id]);
        self.points -= series.len();
        self.series_bytes -= series.allocated_bytes();
        if self.oldest.is_some() {
            self.reindex(key, first);
        }
        self.remove_series(key);
        Some(series)
    }

    /// Puts back the points [`Store::take_series`] took, replacing whatever
    /// `key` holds now (undoing a delete, after the puts that followed it
    /// were undone).
    pub fn restore_series(&mut self, key: &str, series: Series) {
        self.take_series(key);
        if series.is_empty() {
            return;
        }
        let id = self.id_or_insert(key);
        self.points += series.len();
        self.series_bytes += series.allocated_bytes();
        self.series[id] = series;
        if self.oldest.is_some() {
            self.reindex(key, None);
        }
    }

    /// Keeps the drop-oldest index right after the series of `key`, whose
    /// oldest block ended at `before`, changed.
    fn reindex(&mut self, key: &str, before: Option<i64>) {
        let Some(id) = self.id(key) else {
            return;
        };
        let after = self.series[id].first_block_max();
        let (Some(oldest), true) = (&mut self.oldest, after != before) else {
            return;
        };
        let Some(key) = self.keys[id].clone() else {
            return;
        };
        if let Some(before) = before {
            oldest.remove(&(before, Arc::clone(&key)));
        }
        if let Some(after) = after {
            oldest.insert((after, key));
        }
    }

    /// Drops the oldest block of all series (drop-oldest); false when there
    /// is none.
    fn drop_oldest_block(&mut self) -> bool {
        let Some((_, key)) = self.oldest.as_mut().and_then(BTreeSet::pop_first) else {
            return false;
        };
        let Some(id) = self.id(&key) else {
            return false;
        };
        let series = &mut self.series[id];
        let Some((points, bytes)) = series.drop_first_block() else {
            return false;
        };
        let next = series.first_block_max();
        let empty = series.is_empty();
        self.points -= points;
        self.series_bytes -= bytes;
        self.freed.dropped_chunks += 1;
        self.freed.dropped_points += points as u64;
        if let (Some(next), Some(oldest)) = (next, &mut self.oldest) {
            oldest.insert((next, Arc::clone(&key)));
        }
        if empty {
            self.remove_series(&key);
        }
        true
    }

    /// Frees the expired points of the series from key `from` on (all of
    /// them for None) as whole blocks (see `Series::expire`), and removes
    /// the series left empty. Visits at most `budget` series and frees at
    /// most `budget` blocks; returns the key to go on from, None when it
    /// reached the last key.
    pub fn expire(&mut self, from: Option<&Arc<str>>, budget: usize) -> Option<Arc<str>> {
        let horizon = self.horizon;
        let mut due = Vec::new();
        let mut next = None;
        // Removed series (empty) are skipped, and not counted: a key
        // removed and stored again is in the order more than once, and the
        // pass must get past it (they are at most an eighth of the rest).
        let stored = self.series_from(from.map(|key| &**key));
        for (visited, (key, series)) in stored.enumerate() {
            if visited == budget {
                next = Some(Arc::clone(key));
                break;
            }
            if series.has_expired(horizon) {
                due.push(Arc::clone(key));
            }
        }
        let mut blocks_left = budget;
        for key in due {
            let Some(id) = self.id(&key) else {
                continue;
            };
            let series = &mut self.series[id];
            let first = series.first_block_max();
            let (points, bytes, blocks, unfinished) = series.expire(horizon, blocks_left);
            blocks_left -= blocks;
            self.points -= points;
            self.series_bytes = self.series_bytes.wrapping_add_signed(-bytes);
            self.freed.expired_points += points as u64;
            if self.oldest.is_some() {
                self.reindex(&key, first);
            }
            if self.series[id].is_empty() {
                self.remove_series(&key);
            }
            if unfinished {
                return Some(key);
            }
        }
        next
    }

    /// Removes the empty series of `key`, freeing its allocations; its id
    /// goes to a new key once the order has purged it.
    fn remove_series(&mut self, key: &str) {
        let Some(id) = self.ids.remove(&self.keys, key, self.ids.hash(key)) else {
            return;
        };
        let series = std::mem::take(&mut self.series[id as usize]);
        debug_assert!(series.is_empty());
        if let (Some(oldest), Some(first)) = (&mut self.oldest, series.first_block_max()) {
            oldest.retain(|(t, k)| (*t, &**k) != (first, key));
        }
        self.series_bytes -= series.allocated_bytes();
        if self.order.remove(id) {
            for id in self.order.purge(&self.series) {
                if let Some(key) = self.keys[id as usize].take() {
                    self.key_bytes -= key.len() + KEY_HEADER_BYTES;
                }
                self.free.push(id);
            }
        }
    }

    /// The id of the series of `key`, created if missing, with one hash
    /// lookup for a key already stored (the hot path of every put).
    #[inline]
    fn id_or_insert(&mut self, key: &str) -> usize {
        let hash = self.ids.hash(key);
        if let Some(id) = self.ids.find(&self.keys, key, hash) {
            return id as usize;
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                // Four billion series do not fit in memory (see `Id`).
                let id = Id::try_from(self.series.len()).expect("fewer than 2^32 series");
                self.series.push(Series::default());
                self.keys.push(None);
                id
            }
        };
        let key: Arc<str> = Arc::from(key);
        self.key_bytes += key.len() + KEY_HEADER_BYTES;
        self.ids.insert(&key, hash, id);
        self.keys[id as usize] = Some(key);
        self.order.insert(&self.keys, id);
        id as usize
    }

    /// The series of one key.
    pub fn get(&self, key: &str) -> Option<&Series> {
        self.id(key).map(|id| &self.series[id])
    }

    /// Visits every point not expired, key by key in ascending byte order
    /// and by timestamp within a key, starting after `from` (None: from the
    /// start). `visit` returns false to stop after the point it was given;
    /// the walk then returns where it stopped, and None when it reached the
    /// end.
    ///
    /// A walk can be paused and resumed while puts go on (a sliced `get *`
    /// answer, a snapshot written a slice per loop turn). Points and keys
    /// added in between are seen if they sort after the place it stopped,
    /// and not otherwise; no point is visited twice. A key removed in
    /// between (its points expired or dropped) is gone: the walk goes on
    /// with the next key.
    pub fn walk(&self, from: Option<Cursor>, mut visit: impl FnMut(&Arc<str>, Point) -> bool) -> Option<Cursor> {
        // The last point expired: i64::MIN - 1 does not exist, so None.
        let expired = self.horizon.checked_sub(1);
        for (key, series) in self.series_from(from.as_ref().map(|cursor| &*cursor.key)) {
            let resumed = from.as_ref().filter(|cursor| cursor.key == *key).map(|c| c.after);
            let after = resumed.max(expired);
            for point in series.points_after(after) {
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
    /// that stores chunks as they are. Expired points are left out: a chunk
    /// wholly older than the horizon by its last timestamp, and the older
    /// points of one that straddles it. Pauses and resumes like a walk: the
    /// cursor is after the last point of the part `visit` stopped after.
    pub fn walk_parts(
        &self,
        from: Option<Cursor>,
        mut visit: impl FnMut(&Arc<str>, Part<'_>) -> bool,
    ) -> Option<Cursor> {
        let expired = self.horizon.checked_sub(1);
        for (key, series) in self.series_from(from.as_ref().map(|cursor| &*cursor.key)) {
            // The cursor's key may be gone (deleted, expired): then the
            // walk starts the next key from its first point.
            let resumed = from.as_ref().filter(|cursor| cursor.key == *key).map(|c| c.after);
            if let Some(last) = series.visit_parts(resumed.max(expired), |part| visit(key, part)) {
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
        (self.order.from(&self.keys, start))
            .map(|id| (&self.keys[id as usize], &self.series[id as usize]))
            // A removed series is empty, a stored one never.
            .filter_map(|(key, series)| Some((key.as_ref()?, series)).filter(|(_, s)| !s.is_empty()))
    }

    /// Number of series: every key stored has points (a series emptied by
    /// a delete, expiry or drop-oldest is removed).
    pub fn series_count(&self) -> usize {
        self.ids.len()
    }

    /// Number of points held, including the expired ones not yet freed (at
    /// most a block a series: see `Series::expire`).
    pub fn point_count(&self) -> usize {
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::XorShift;
    use std::collections::BTreeMap;

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
        for p in s.head.points() {
            assert!(prev.is_none_or(|q| q < p.0), "head unsorted or before a chunk");
            prev = Some(p.0);
        }
        assert_eq!(s.len(), model.len());
        let mut afters = vec![i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1, -1, 0];
        let head_bounds = s.head.first_ts().zip(s.head.last_ts());
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
                    // In runs, none empty, and stopped after any run.
                    let mut runs: Vec<Point> = Vec::new();
                    s.range_runs(from, to, |run| {
                        assert!(!run.is_empty());
                        runs.extend_from_slice(run);
                        true
                    });
                    assert_eq!(runs, want, "runs {from} {to}");
                    let mut first = None;
                    s.range_runs(from, to, |run| {
                        assert!(first.is_none(), "a run after a stop");
                        first = Some(run.to_vec());
                        false
                    });
                    assert!(want.starts_with(&first.unwrap_or_default()));
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
            let mut bytes = 0isize;
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
                let (replaced, grown) = s.insert_sized(t, i as f64);
                assert_eq!(replaced, model.insert(t, i as f64));
                bytes += grown;
                // Now and then take a point back out (a failed commit's undo).
                if rng.below(16) == 0 {
                    let gone = if rng.below(2) == 0 { t } else { rng.below(1000) as i64 };
                    let (removed, grown) = s.remove_sized(gone);
                    assert_eq!(removed, model.remove(&gone).is_some());
                    bytes += grown;
                }
                if rng.below(2048) == 0 {
                    check_series(&s, &model, &mut rng);
                    assert_eq!(bytes, s.allocated_bytes() as isize, "bytes kept as puts go");
                }
            }
            check_series(&s, &model, &mut rng);
            assert_eq!(bytes, s.allocated_bytes() as isize, "bytes kept as puts go");
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
            for t in 0..4 * CHUNK_POINTS as i64 {
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
                    during.push(put(&mut store, &mut rng, 8 * CHUNK_POINTS as u64 + 100));
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

    /// A store rebuilt from what a snapshot of `store` holds (its parts).
    fn snapshot_round_trip(store: &Store) -> Store {
        let mut loaded = Store::new();
        store.walk_parts(None, |key, part| {
            match part {
                Part::Sealed(chunk) => {
                    loaded.adopt_chunk(key, chunk.clone()).expect("a stored chunk");
                }
                Part::Points(points) => loaded.put_points(key, points.iter().copied()),
            }
            true
        });
        loaded
    }

    #[test]
    fn the_packed_head_takes_late_and_duplicate_points_at_every_split() {
        // k points in order, then a point out of order, a retry (same
        // bits) or an overwrite (other bits) of a point, or one more in
        // order, then in order again up to n: around the sealing bounds.
        let value = |t: i64| (t % 17) as f64 / 4.0 + 0.1 * (t % 3) as f64;
        let mut cases = 0;
        for n in [1i64, 2, 3, 10, 239, 240, 241, 481] {
            let splits: Vec<i64> = if n <= 10 {
                (0..=n).collect()
            } else {
                vec![0, 1, 2, n / 2, 238, 239, 240, 241, n - 2, n - 1, n]
            };
            for k in splits.into_iter().filter(|&k| k <= n) {
                for twist in 0..5 {
                    let mut s = Series::default();
                    let mut model = BTreeMap::new();
                    let mut bytes = 0isize;
                    let mut put = |s: &mut Series, model: &mut BTreeMap<i64, f64>, t: i64, v: f64| {
                        let (replaced, grown) = s.insert_sized(t, v);
                        assert_eq!(
                            replaced.map(f64::to_bits),
                            model.insert(t, v).map(f64::to_bits),
                            "n {n} k {k} twist {twist} t {t}"
                        );
                        bytes += grown;
                        assert_eq!(bytes, s.allocated_bytes() as isize, "bytes kept as puts go");
                    };
                    for t in 0..k {
                        put(&mut s, &mut model, 10 * t, value(t));
                    }
                    let last = 10 * (k - 1);
                    let (packed, head_len) = (matches!(s.head, Head::Packed(_)), s.head.len());
                    match twist {
                        // Late: before the last point, between two points.
                        0 => put(&mut s, &mut model, last - 5, -1.0),
                        // Older than everything.
                        1 => put(&mut s, &mut model, -1000, -2.0),
                        // A retry of the last point: a packed head stays packed.
                        2 if k > 0 => {
                            put(&mut s, &mut model, last, value(k - 1));
                            assert_eq!(matches!(s.head, Head::Packed(_)), packed);
                        }
                        // An overwrite of the last point with other bits.
                        3 if k > 0 => put(&mut s, &mut model, last, -value(k - 1) - 1.0),
                        _ => {}
                    }
                    if twist == 4 || k == 0 {
                        // In order only: the head never turns plain.
                        assert!(matches!(s.head, Head::Packed(_)));
                        assert_eq!(head_len, k as usize % CHUNK_POINTS);
                    }
                    for t in k..n {
                        put(&mut s, &mut model, 10 * t, value(t));
                    }
                    check_series(&s, &model, &mut XorShift::seeded(k as u64));
                    let mut store = Store::new();
                    store.restore_series("k", s);
                    let loaded = snapshot_round_trip(&store);
                    assert_eq!(dump(&loaded), dump(&store), "n {n} k {k} twist {twist}");
                    cases += 1;
                }
            }
        }
        assert!(cases > 200);
    }

    #[test]
    fn a_packed_head_is_sealed_at_the_chunk_size_and_a_plain_one_packs_again_after() {
        let mut s = Series::default();
        for t in 0..CHUNK_POINTS as i64 - 1 {
            s.insert(t, 1.5);
        }
        assert!(matches!(&s.head, Head::Packed(p) if p.len() == CHUNK_POINTS - 1));
        assert!(s.head.heap_bytes() < CHUNK_POINTS, "a few bits a point");
        s.insert(5, 2.5);
        assert!(matches!(&s.head, Head::Plain(p) if p.len() == CHUNK_POINTS - 1));
        s.insert(CHUNK_POINTS as i64, 1.5);
        assert_eq!((s.blocks.len(), s.head.len()), (1, 0));
        s.insert(CHUNK_POINTS as i64 + 1, 1.5);
        assert!(matches!(&s.head, Head::Packed(p) if p.len() == 1));
        assert_eq!(s.head.heap_bytes(), 0, "one point takes no bits");
        // A point older than the head's but after the blocks: plain again.
        let mut model: BTreeMap<i64, f64> = (0..CHUNK_POINTS as i64 - 1).map(|t| (t, 1.5)).collect();
        model.extend([(5, 2.5), (CHUNK_POINTS as i64, 1.5), (CHUNK_POINTS as i64 + 1, 1.5)]);
        check_series(&s, &model, &mut XorShift::seeded(9));
        assert!(s.remove(CHUNK_POINTS as i64 + 1));
        assert!(!s.remove(CHUNK_POINTS as i64 + 1));
        model.remove(&(CHUNK_POINTS as i64 + 1));
        check_series(&s, &model, &mut XorShift::seeded(9));
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

/// Retention and the memory limit: what is freed, in which order, and the
/// byte count kept as points come and go against a recount.
#[cfg(test)]
mod policy_tests {
    use super::*;
    use crate::test_support::XorShift;
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// [`Store::allocated_bytes`] computed from scratch.
    fn recount(store: &Store) -> usize {
        let live = || store.ids.ids().map(|id| id as usize);
        let series: usize = live().map(|id| store.series[id].allocated_bytes()).sum();
        // Removed slots hold nothing, and free ones no key.
        assert!(store.series.iter().all(|s| !s.is_empty() || s.allocated_bytes() == 0));
        assert!(store.free.iter().all(|&id| store.keys[id as usize].is_none()));
        // The keys of the stored series and of the removed ones the order
        // still holds.
        let keys: usize = store.keys.iter().flatten().map(|k| k.len() + KEY_HEADER_BYTES).sum();
        assert_eq!((store.series_bytes, store.key_bytes), (series, keys));
        let order: Vec<u32> = store.order.from(&store.keys, None).collect();
        assert_eq!(order.len(), store.ids.len() + store.order.dead.len());
        let live_in_order: Vec<usize> = (order.iter().map(|&id| id as usize))
            .filter(|&id| !store.series[id].is_empty())
            .collect();
        let mut want: Vec<usize> = live().collect();
        want.sort_by_key(|&id| store.keys[id].clone());
        assert_eq!(live_in_order, want, "the order holds every stored key, in order");
        let points: usize = live().map(|id| store.series[id].len()).sum();
        assert_eq!(store.points, points);
        if let Some(oldest) = &store.oldest {
            let want: BTreeSet<(i64, Arc<str>)> = live()
                .filter_map(|id| {
                    let key = store.keys[id].clone().expect("a stored series' key");
                    store.series[id].first_block_max().map(|t| (t, key))
                })
                .collect();
            assert_eq!(oldest, &want, "drop-oldest index");
        }
        store.allocated_bytes()
    }

    fn retention(seconds: u64) -> Policy {
        Policy {
            retention: Some(Duration::from_secs(seconds)),
            ..Policy::default()
        }
    }

    /// Runs expiry passes of `slice` until done; returns the slices taken.
    fn expire_all(store: &mut Store, slice: usize) -> usize {
        let (mut from, mut slices) = (None, 0);
        loop {
            slices += 1;
            from = store.expire(from.as_ref(), slice);
            if from.is_none() {
                return slices;
            }
        }
    }

    fn visible(store: &Store) -> Vec<(String, i64)> {
        let mut seen = Vec::new();
        store.walk(None, |k, p| {
            seen.push((k.to_string(), p.0));
            true
        });
        seen
    }

    #[test]
    fn expiry_frees_whole_chunks_and_keeps_at_most_one_straddling() {
        let n = CHUNK_POINTS as i64 * 10 + 7;
        let mut store = Store::with_policy(retention(1000), 0);
        for t in 0..n {
            assert_eq!(store.try_put("k", t * 10, 1.0), Ok(None));
        }
        let before = recount(&store);
        // Now 2000 s later: points before t = 1000 (the first 100) expire,
        // none of them a whole chunk yet.
        store.set_now(2000);
        assert_eq!(store.horizon(), 1000);
        expire_all(&mut store, EXPIRE_SLICE);
        assert_eq!(
            store.point_count(),
            n as usize,
            "nothing freed: the first chunk straddles"
        );
        assert_eq!(recount(&store), before);
        assert_eq!(
            visible(&store).len(),
            n as usize - 100,
            "but expired points are not listed"
        );
        // Five and a half chunks' time later: five chunks are freed whole.
        let now = 1000 + CHUNK_POINTS as i64 * 10 * 11 / 2;
        store.set_now(now);
        expire_all(&mut store, EXPIRE_SLICE);
        let s = store.get("k").unwrap();
        assert_eq!(s.blocks.len(), 5);
        assert_eq!(store.point_count(), n as usize - 5 * CHUNK_POINTS);
        assert_eq!(store.freed().expired_points, 5 * CHUNK_POINTS as u64);
        // At most one chunk of slack: the held points older than the horizon.
        let stale = s.iter().filter(|p| p.0 < store.horizon()).count();
        assert!(stale > 0 && stale < CHUNK_POINTS, "{stale}");
        assert!(s.blocks[0].min_ts() < store.horizon() && s.blocks[0].max_ts() >= store.horizon());
        assert!(recount(&store) < before);
        assert!(visible(&store).iter().all(|p| p.1 >= store.horizon()));
        // Past every point: the head is cut too and the series is gone.
        store.set_now(n * 10 + 1000);
        expire_all(&mut store, EXPIRE_SLICE);
        assert_eq!((store.series_count(), store.point_count()), (0, 0));
        assert!(store.get("k").is_none());
        assert_eq!(store.freed().expired_points, n as u64);
        assert_eq!(recount(&store), store.allocated_bytes());
        // Too old to be stored at all; a new point is.
        assert_eq!(store.try_put("k", n * 10 - 1, 1.0), Err(Refusal::Expired));
        assert_eq!(store.try_put("k", n * 10, 1.0), Ok(None));
        assert_eq!(store.series_count(), 1);
    }

    #[test]
    fn series_with_no_points_left_disappear_and_their_ids_are_reused() {
        let mut store = Store::with_policy(retention(100), 900);
        for t in 900..1000 {
            store.try_put("old", t - 100, 0.5).unwrap();
            store.try_put("young", t + 60, 0.5).unwrap();
        }
        store.set_now(1070);
        expire_all(&mut store, EXPIRE_SLICE);
        assert_eq!(store.series_count(), 1);
        assert!(store.get("old").is_none());
        assert_eq!(visible(&store).first(), Some(&("young".to_owned(), 970)));
        // The removed series stays in the order (its key with it) until
        // the removed ones are many.
        assert_eq!(
            (store.order.dead.as_slice(), store.free.as_slice()),
            (&[0][..], &[][..])
        );
        assert_eq!(store.keys[0].as_deref(), Some("old"));
        recount(&store);
        for i in 0..PURGE_MIN {
            store.try_put(&format!("gone{i}"), 1000, 0.5).unwrap();
        }
        let slots = store.series.len();
        store.set_now(1101);
        expire_all(&mut store, EXPIRE_SLICE);
        assert_eq!(store.series_count(), 1);
        assert!(store.order.dead.is_empty(), "purged");
        assert_eq!(store.free.len(), PURGE_MIN + 1);
        assert!(store.keys.iter().flatten().all(|k| &**k == "young"));
        recount(&store);
        store.try_put("new", 2000, 1.0).unwrap();
        assert_eq!(store.free.len(), PURGE_MIN, "a free id is taken");
        assert_eq!(store.series.len(), slots);
        assert_eq!(store.get("new").map(Series::len), Some(1));
        assert_eq!(store.set_now(0), (), "the horizon never moves back");
        assert_eq!(store.horizon(), 1001);
        let keys: Vec<String> = store.series_from(None).map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["new", "young"]);
        recount(&store);
    }

    #[test]
    fn a_pass_in_small_slices_frees_what_one_pass_frees() {
        let build = || {
            let mut store = Store::with_policy(retention(5000), 0);
            let mut rng = XorShift::seeded(3);
            for i in 0..20_000 {
                let key = format!("k{}", rng.below(300));
                store
                    .try_put(&key, (i % 9000) as i64 + rng.below(50) as i64, 1.0)
                    .unwrap();
            }
            store.set_now(9000);
            store
        };
        let (mut whole, mut sliced) = (build(), build());
        assert_eq!(expire_all(&mut whole, EXPIRE_SLICE), 1);
        assert!(expire_all(&mut sliced, 7) > 40);
        assert_eq!(visible(&whole), visible(&sliced));
        assert_eq!(whole.point_count(), sliced.point_count());
        assert_eq!(recount(&whole), recount(&sliced));
    }

    #[test]
    fn a_paused_walk_goes_on_after_a_removed_key() {
        let mut store = Store::with_policy(retention(10), 100);
        for k in ["a", "b", "c"] {
            store.try_put(k, 95, 1.0).unwrap();
            store.try_put(k, 200, 2.0).unwrap();
        }
        store.try_put("b0", 96, 1.0).unwrap();
        let cursor = store.walk(None, |k, _| &**k != "b0");
        assert_eq!(cursor.as_ref().map(|c| (&*c.key, c.after)), Some(("b0", 96)));
        store.set_now(150);
        expire_all(&mut store, EXPIRE_SLICE);
        assert!(store.get("b0").is_none());
        let mut rest = Vec::new();
        store.walk(cursor, |k, p| {
            rest.push((k.to_string(), p.0));
            true
        });
        // c's point at 200 is after 96 but in another key: not skipped.
        assert_eq!(rest, [("c".to_owned(), 200)]);
    }

    fn limited(max_bytes: u64, on_full: OnFull) -> Store {
        Store::with_policy(
            Policy {
                max_bytes: Some(max_bytes),
                on_full,
                ..Policy::default()
            },
            0,
        )
    }

    #[test]
    fn reject_refuses_at_the_limit_and_keeps_everything_stored() {
        const MAX: u64 = 256 * 1024;
        let mut store = limited(MAX, OnFull::Reject);
        let mut rng = XorShift::seeded(5);
        let mut model: BTreeMap<(String, i64), f64> = BTreeMap::new();
        let mut refused = 0;
        for i in 0..100_000i64 {
            let key = format!("host{}.cpu", rng.below(50));
            let value = rng.below(1 << 40) as f64 / 7.0;
            match store.try_put(&key, i, value) {
                Ok(_) => {
                    model.insert((key, i), value);
                }
                Err(refusal) => {
                    assert_eq!(refusal, Refusal::MemoryFull);
                    refused += 1;
                }
            }
            // Past the limit by at most one put's growth.
            assert!(
                store.allocated_bytes() as u64 <= MAX + 8 * 1024,
                "{}",
                store.allocated_bytes()
            );
        }
        assert!(refused > 50_000, "{refused} refused");
        let want: Vec<(String, i64)> = model.keys().cloned().collect();
        assert_eq!(visible(&store), want);
        for ((key, t), v) in &model {
            let got = store.get(key).unwrap().range(*t, *t).next();
            assert_eq!(got.map(|p| p.1.to_bits()), Some(v.to_bits()));
        }
        assert_eq!(recount(&store), store.allocated_bytes());
        assert_eq!(store.freed(), Freed::default());
    }

    #[test]
    fn drop_oldest_drops_the_oldest_chunks_of_all_series_first() {
        const MAX: u64 = 128 * 1024;
        let mut store = limited(MAX, OnFull::DropOldest);
        let mut rng = XorShift::seeded(11);
        let mut model: BTreeMap<(String, i64), f64> = BTreeMap::new();
        // Series at different phases and rates, so their chunks end at
        // interleaved times.
        for i in 0..60_000i64 {
            let host = rng.below(20);
            let key = format!("host{host}");
            let t = i * 3 + host as i64;
            let value = (rng.below(100_000) as f64) / 100.0;
            store.try_put(&key, t, value).expect("drop-oldest makes room");
            model.insert((key, t), value);
            assert!(store.allocated_bytes() as u64 <= MAX + 8 * 1024);
        }
        assert!(store.freed().dropped_chunks > 50, "{:?}", store.freed());
        let held = visible(&store);
        assert_eq!(held.len(), store.point_count());
        assert_eq!(
            model.len() - held.len(),
            store.freed().dropped_points as usize,
            "every missing point was dropped with its chunk"
        );
        // Every dropped point is older than the oldest chunk still held, in
        // any series.
        let oldest_held = (store.ids.ids())
            .filter_map(|id| store.series[id as usize].first_block_max())
            .min()
            .unwrap();
        let held_set: std::collections::HashSet<(String, i64)> = held.into_iter().collect();
        for (key, t) in model.keys() {
            if !held_set.contains(&(key.clone(), *t)) {
                assert!(
                    *t <= oldest_held,
                    "{key} {t} dropped before a chunk ending at {oldest_held}"
                );
            }
        }
        assert_eq!(recount(&store), store.allocated_bytes());
    }

    #[test]
    fn the_byte_count_matches_a_recount_through_every_change() {
        for seed in 1..40u64 {
            let mut rng = XorShift::seeded(seed);
            let on_full = if seed % 2 == 0 {
                OnFull::DropOldest
            } else {
                OnFull::Reject
            };
            let mut store = Store::with_policy(
                Policy {
                    retention: Some(Duration::from_secs(500)),
                    max_bytes: Some(20_000 + rng.below(200_000)),
                    on_full,
                },
                0,
            );
            let mut now = 0;
            for i in 0..5000 {
                let key = format!("k{}", rng.below(40));
                let t = match rng.below(4) {
                    0 => now - rng.below(600) as i64,
                    _ => now + rng.below(10) as i64,
                };
                let _ = store.try_put(&key, t, rng.below(1000) as f64);
                match rng.below(50) {
                    0 => store.remove(&key, t),
                    // A delete, and one undone.
                    2 => drop(store.take_series(&key)),
                    3 => {
                        if let Some(series) = store.take_series(&key) {
                            store.restore_series(&key, series);
                        }
                    }
                    // A snapshot's chunk: after the series, or among it.
                    4 => {
                        let from = now - rng.below(1000) as i64;
                        let points: Vec<Point> = (0..1 + rng.below(300) as i64).map(|i| (from + i, 1.0)).collect();
                        store
                            .adopt_chunk(&key, encode(&points))
                            .expect("a chunk this test encoded");
                    }
                    1 => {
                        now += rng.below(100) as i64;
                        store.set_now(now);
                        let budget = 1 + rng.below(8) as usize;
                        store.expire(None, budget);
                    }
                    _ => {}
                }
                if i % 500 == 0 {
                    recount(&store);
                }
            }
            recount(&store);
            store.set_now(now + 10_000);
            expire_all(&mut store, 3);
            assert_eq!(
                (store.series_count(), store.point_count(), store.series_bytes),
                (0, 0, 0)
            );
            recount(&store);
        }
    }

    #[test]
    fn a_delete_removes_the_series_and_expiry_goes_on_without_it() {
        let policy = Policy {
            retention: Some(Duration::from_secs(1000)),
            max_bytes: Some(1 << 30),
            on_full: OnFull::DropOldest,
        };
        let mut store = Store::with_policy(policy, 0);
        let n = 3 * CHUNK_POINTS as i64;
        for t in 0..n {
            store.put("a", t, 1.0);
            store.put("b", t, 2.0);
        }
        // A `get *` paused in the middle of a.
        let mut visits = 0;
        let paused = store.walk(None, |_, _| {
            visits += 1;
            visits < 10
        });
        let taken = store.take_series("a").expect("a is stored");
        assert_eq!(taken.len(), n as usize);
        assert!(store.get("a").is_none());
        assert_eq!((store.series_count(), store.point_count()), (1, n as usize));
        recount(&store);
        // The paused walk goes on with b, from its first point.
        let mut rest = Vec::new();
        store.walk(paused, |k, p| {
            rest.push((k.to_string(), p.0));
            true
        });
        assert_eq!(rest, (0..n).map(|t| ("b".to_owned(), t)).collect::<Vec<_>>());
        // The deleted points do not count as expired; b's do.
        store.set_now(n + 1000);
        expire_all(&mut store, 2);
        assert_eq!(
            (store.series_count(), store.point_count(), store.series_bytes),
            (0, 0, 0)
        );
        assert_eq!(store.freed().expired_points, n as u64);
        recount(&store);
        // Undone, the delete brings a back with its bytes and its oldest chunk.
        store.restore_series("a", taken);
        assert_eq!((store.series_count(), store.point_count()), (1, n as usize));
        recount(&store);
        assert!(visible(&store).is_empty(), "a's points expired meanwhile");
    }

    #[test]
    fn a_snapshot_chunk_wholly_expired_is_not_adopted_and_one_that_straddles_is() {
        let mut store = Store::with_policy(
            Policy {
                retention: Some(Duration::from_secs(1000)),
                max_bytes: Some(1 << 30),
                on_full: OnFull::DropOldest,
            },
            10_000,
        );
        let chunk = |from: i64| encode(&(from..from + 100).map(|t| (t, t as f64)).collect::<Vec<_>>());
        // Ends at 8,999, before the horizon of 9,000.
        assert_eq!(store.adopt_chunk("k", chunk(8_900)), Ok(100));
        assert_eq!(
            (store.series_count(), store.point_count(), store.series_bytes),
            (0, 0, 0)
        );
        assert_eq!(store.freed().expired_points, 100);
        recount(&store);
        // 8,950..9,049: kept whole, read from the horizon on.
        assert_eq!(store.adopt_chunk("k", chunk(8_950)), Ok(100));
        assert_eq!(store.adopt_chunk("k", chunk(9_050)), Ok(100));
        assert_eq!((store.series_count(), store.point_count()), (1, 200));
        assert_eq!(store.freed().expired_points, 100);
        recount(&store);
        assert_eq!(visible(&store).len(), 150);
        // A snapshot written now leaves out the expired points.
        let mut parts = 0;
        store.walk_parts(None, |_, part| {
            parts += match part {
                Part::Sealed(c) => c.len(),
                Part::Points(p) => p.len(),
            };
            true
        });
        assert_eq!(parts, 150);
        // A chunk that overlaps the series is inserted point by point, its
        // expired points skipped.
        assert_eq!(store.adopt_chunk("j", chunk(9_500)), Ok(100));
        assert_eq!(store.adopt_chunk("j", chunk(8_990)), Ok(100));
        assert_eq!(store.freed().expired_points, 110);
        assert_eq!(store.get("j").map(Series::len), Some(190));
        recount(&store);
    }

    #[test]
    fn a_snapshot_walk_resumed_after_a_deleted_key_starts_the_next_key_whole() {
        let mut store = Store::new();
        for t in 0..2 * CHUNK_POINTS as i64 {
            store.put("a", t, 1.0);
            store.put("b", t, 2.0);
        }
        let paused = store
            .walk_parts(None, |_, _| false)
            .expect("paused after a's first chunk");
        assert_eq!((&*paused.key, paused.after), ("a", CHUNK_POINTS as i64 - 1));
        store.take_series("a");
        let mut rest = Vec::new();
        store.walk_parts(Some(paused), |key, part| {
            rest.push((key.to_string(), matches!(part, Part::Sealed(_))));
            true
        });
        assert_eq!(rest, [("b".to_owned(), true), ("b".to_owned(), true)]);
    }

    #[test]
    fn loading_skips_expired_points_and_drops_oldest_again() {
        let mut store = Store::with_policy(retention(100), 1000);
        store.load("k", 899, 1.0);
        store.load("k", 900, 2.0);
        store.put_points("j", [(10, 1.0), (950, 2.0)]);
        store.put_points("gone", [(10, 1.0)]);
        assert_eq!(visible(&store), [("j".to_owned(), 950), ("k".to_owned(), 900)]);
        assert_eq!(store.freed().expired_points, 3);
        assert_eq!(store.series_count(), 2);
        let mut store = limited(64 * 1024, OnFull::DropOldest);
        for t in 0..200_000 {
            store.load("k", t, (t % 977) as f64 * 1.5);
        }
        assert!(store.allocated_bytes() <= 64 * 1024);
        assert!(store.freed().dropped_chunks > 0);
        let mut store = limited(64 * 1024, OnFull::Reject);
        for t in 0..200_000 {
            store.load("k", t, (t % 977) as f64 * 1.5);
        }
        assert_eq!(store.point_count(), 200_000, "a replayed put is never refused");
        recount(&store);
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
