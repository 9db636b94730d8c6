//! An open head: the newest points of a series, appended to a bit stream as
//! they arrive, as Prometheus' head chunk does, instead of held plain (16
//! bytes a point) until a chunk's worth is sealed.
//!
//! The bits are a chunk's XOR coding ([`super::chunk`]: Gorilla's
//! delta-of-delta timestamps and XOR values), the one coding that can be
//! appended to without knowing the values to come; the chunk sealed from a
//! full head still picks whichever coding is smallest. Layout, once the
//! head has two points:
//!
//! ```text
//! head = first_ts:64 scheme:3 (XOR) value0:64 { ts value }*(count-1)
//! ```
//!
//! that is, the first timestamp, then the bits of a sealed XOR chunk, which
//! [`chunk::Points`] decodes. A head of one point keeps it in its fields and
//! allocates nothing: a series of one point costs no bits at all.
//!
//! Only appends: a point at or before the last one is refused
//! ([`PushError::Unsorted`]), and the store keeps such a head plain instead.

use super::bits::BitSink;
use super::chunk::{self, timestamp_field, Chunk, Decoded, TimestampEncoder, XorState, TAG_BITS, TAG_XOR};

/// A stored measurement: (timestamp, value).
type Point = (i64, f64);

/// Most points in a head: a chunk's limit (the count is a u16).
pub const MAX_POINTS: usize = chunk::MAX_POINTS;

/// Why a point was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("a head takes only points after its last one")]
    Unsorted,
    #[error("a head holds at most {MAX_POINTS} points")]
    Full,
}

/// Points appended as bits. Appending costs a few shifts and ORs; reading
/// decodes from the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    /// The layout above, zero past `bits`; empty while `count` <= 1. Its
    /// length is its allocation (see [`allocation_for`]).
    bytes: Box<[u8]>,
    /// The last point (the only one while `count` is 1), and the step
    /// before it: the appending coder's state.
    last_ts: i64,
    delta: i64,
    last: u64,
    /// Bits written into `bytes`.
    bits: u32,
    count: u16,
    /// The XOR coding's window of meaningful bits, `leading << 8 | len`;
    /// 0 before one is set (a window is at least one bit long).
    window: u16,
}

/// Up to 128 bits, collected before they are written out: one field group
/// of a point (a timestamp takes at most 69 bits, a value 77).
#[derive(Default)]
struct Acc {
    value: u128,
    n: u32,
}

impl BitSink for Acc {
    fn put(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 64 && self.n + n <= 128);
        if n == 0 {
            return;
        }
        let value = if n == 64 { value } else { value & ((1 << n) - 1) };
        self.value = (self.value << n) | u128::from(value);
        self.n += n;
    }
}

/// Bytes to allocate for at least `needed`: glibc's malloc hands out
/// chunks of 16·k bytes with an 8-byte header (32 at least), so a request
/// is served from the same chunk as the largest of the form 16·k + 8 at or
/// above it; asking for that costs no more memory and spares the
/// reallocations to reach it.
fn allocation_for(needed: usize) -> usize {
    (needed + 8).next_multiple_of(16).max(32) - 8
}

impl Packed {
    /// Number of points.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first timestamp, None when empty.
    pub fn first_ts(&self) -> Option<i64> {
        match self.count {
            0 => None,
            1 => Some(self.last_ts),
            _ => Some(i64::from_be_bytes(self.bytes[..8].try_into().expect("8 bytes"))),
        }
    }

    /// The last point, None when empty.
    pub fn last(&self) -> Option<Point> {
        (self.count > 0).then(|| (self.last_ts, f64::from_bits(self.last)))
    }

    /// Bytes allocated.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Empties the head but keeps its allocation, zeroed, for the points
    /// to come: a series whose points come at a steady pace then allocates
    /// its head once, not at every step of its growth after each sealing.
    /// Heads freed and grown again side by side leave holes in the heap
    /// that the allocator does not give back (they cost a server ingesting
    /// the mix some 0.4 B of RSS a point, more than the heads themselves).
    pub fn clear(&mut self) {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.fill(0);
        *self = Packed {
            bytes,
            ..Packed::default()
        };
    }

    /// Appends a point after the last one; returns how much the allocation
    /// grew by.
    ///
    /// The fields of a point are coded here with a few shifts each and
    /// written with one or two word-wide ORs (`Packed::put`): a point with
    /// a jittered timestamp and a new XOR window costs a put about 120
    /// instructions, its growth included (callgrind, `scripts/profile.sh`),
    /// where a generic bit sink, field by field, cost 340.
    #[inline]
    pub fn push(&mut self, timestamp: i64, value: f64) -> Result<usize, PushError> {
        let value = value.to_bits();
        if self.count <= 1 {
            return self.push_first(timestamp, value);
        }
        if timestamp <= self.last_ts {
            return Err(PushError::Unsorted);
        }
        if self.len() >= MAX_POINTS {
            return Err(PushError::Full);
        }
        // The timestamp: 0 for the same step, else a bucket's prefix and
        // the dod (chunk::TimestampEncoder's coding).
        let delta = timestamp.wrapping_sub(self.last_ts);
        let dod = delta.wrapping_sub(self.delta);
        let (ts, ts_bits) = if dod == 0 {
            (0, 1)
        } else {
            match timestamp_field(dod) {
                Some(field) => field,
                None => return self.push_slow(timestamp, value),
            }
        };
        // The value: Gorilla's XOR (chunk::XorState's coding): a control
        // field of 1, 2 or 13 bits, then the meaningful bits.
        let xor = value ^ self.last;
        let before = self.bytes.len();
        if xor == 0 {
            self.put(ts << 1, ts_bits + 1);
        } else {
            let leading = xor.leading_zeros().min(31);
            let trailing = xor.trailing_zeros();
            let (wl, wlen) = (u32::from(self.window >> 8), u32::from(self.window & 0xff));
            let (control, control_bits, len, shift) = if self.window != 0 && leading >= wl && trailing >= 64 - wl - wlen
            {
                (0b10, 2, wlen, 64 - wl - wlen)
            } else {
                let len = 64 - leading - trailing;
                // leading <= 31 and 1 <= len <= 64: both fit a byte.
                self.window = ((leading as u16) << 8) | len as u16;
                (
                    0b11 << 11 | u64::from(leading) << 6 | u64::from(len - 1),
                    13,
                    len,
                    trailing,
                )
            };
            let head = (ts << control_bits) | control;
            let head_bits = ts_bits + control_bits;
            let meaningful = xor >> shift;
            if head_bits + len <= 57 {
                self.put(head << len | meaningful, head_bits + len);
            } else {
                self.put(head, head_bits);
                if len > 57 {
                    self.put(meaningful >> 32, len - 32);
                    self.put(meaningful & 0xffff_ffff, 32);
                } else {
                    self.put(meaningful, len);
                }
            }
        }
        (self.last_ts, self.delta, self.last) = (timestamp, delta, value);
        self.count += 1;
        Ok(self.bytes.len() - before)
    }

    /// The first two points: the first goes into the bits, with the
    /// coding's header, once there is a second.
    #[cold]
    fn push_first(&mut self, timestamp: i64, value: u64) -> Result<usize, PushError> {
        if self.count == 0 {
            (self.last_ts, self.last, self.count) = (timestamp, value, 1);
            return Ok(0);
        }
        if timestamp <= self.last_ts {
            return Err(PushError::Unsorted);
        }
        self.push_slow(timestamp, value)
    }

    /// [`Packed::push`] through the chunk's own coders, for the first
    /// points and timestamps far off their step (a dod past 32 bits).
    #[cold]
    fn push_slow(&mut self, timestamp: i64, value: u64) -> Result<usize, PushError> {
        let before = self.bytes.len();
        let window = (self.window != 0).then(|| (u32::from(self.window >> 8), u32::from(self.window & 0xff)));
        let mut ts = TimestampEncoder {
            prev: self.last_ts,
            delta: self.delta,
        };
        let mut xor = XorState {
            prev: self.last,
            window,
        };
        let (mut first, mut step, mut bits) = (Acc::default(), Acc::default(), Acc::default());
        if self.count == 1 {
            // The first point goes into the bits now that there is a second.
            first.put(self.last_ts as u64, 64);
            step.put(TAG_XOR, TAG_BITS);
            step.put(self.last, 64);
            self.write(&first);
            self.write(&step);
            step = Acc::default();
        }
        ts.put(&mut step, timestamp);
        xor.put(&mut bits, value);
        self.write(&step);
        self.write(&bits);
        (self.last_ts, self.delta, self.last) = (timestamp, ts.delta, value);
        if let Some((leading, len)) = xor.window {
            // leading <= 31 and 1 <= len <= 64: both fit a byte.
            self.window = ((leading as u16) << 8) | len as u16;
        }
        self.count += 1;
        Ok(self.bytes.len() - before)
    }

    /// Writes the low `n` bits of `value` (1 <= `n` <= 57) after those
    /// written: one big-endian word ORed into the (zero) bytes from the
    /// byte of the first bit, or byte by byte near the allocation's end.
    #[inline(always)]
    fn put(&mut self, value: u64, n: u32) {
        debug_assert!((1..=57).contains(&n) && value >> n == 0);
        let pos = self.bits as usize;
        let end = pos + n as usize;
        if end.div_ceil(8) > self.bytes.len() {
            self.grow(end.div_ceil(8));
        }
        let word = (value << (64 - n)) >> (pos % 8);
        let i = pos / 8;
        match self.bytes.get_mut(i..i + 8) {
            Some(eight) => {
                let old = u64::from_be_bytes((&*eight).try_into().expect("8 bytes"));
                eight.copy_from_slice(&(old | word).to_be_bytes());
            }
            None => {
                for (byte, new) in self.bytes[i..end.div_ceil(8)].iter_mut().zip(word.to_be_bytes()) {
                    *byte |= new;
                }
            }
        }
        // At most MAX_POINTS points of at most 146 bits after 131: fits.
        self.bits = end as u32;
    }

    /// Grows the allocation to hold at least `needed` bytes.
    #[cold]
    fn grow(&mut self, needed: usize) {
        // Half as much again: a head that grows to a full chunk's 1-2
        // KiB without a hint (its series' first) reallocates about ten
        // times, and a short one takes the allocator's next size up.
        let len = self.bytes.len();
        let mut bytes = std::mem::take(&mut self.bytes).into_vec();
        let target = allocation_for(needed.max(len + len / 2));
        bytes.reserve_exact(target - len);
        bytes.resize(target, 0);
        self.bytes = bytes.into_boxed_slice();
    }

    /// Writes the bits of `acc` after those written, growing the allocation
    /// if they do not fit.
    fn write(&mut self, acc: &Acc) {
        let mut left = acc.n;
        while left > 0 {
            let take = left.min(57);
            let part = (acc.value >> (left - take)) as u64 & (u64::MAX >> (64 - take));
            self.put(part, take);
            left -= take;
        }
    }

    /// The points, in order.
    pub fn iter(&self) -> Points<'_> {
        match self.count {
            0 => Points::One(None),
            1 => Points::One(self.last()),
            _ => Points::Bits(chunk::Points::over(
                &self.bytes[8..(self.bits as usize).div_ceil(8)],
                self.first_ts().unwrap_or(self.last_ts),
                self.last_ts,
                self.count,
            )),
        }
    }

    /// Every point into `out`, as [`chunk::Chunk::decode_to`] does.
    pub fn decode_to(&self, out: &mut Decoded) {
        let decoded = out.fill(self.count, |slots| match slots {
            [] => Ok(0),
            [only] => {
                *only = (self.last_ts, f64::from_bits(self.last));
                Ok(1)
            }
            // The whole allocation, zero past the bits: reads near the
            // end look past them without leaving it.
            _ => chunk::decode_prefix::<false>(
                &self.bytes[8..],
                (self.bits as usize).div_ceil(8) - 8,
                self.first_ts().unwrap_or(self.last_ts),
                self.last_ts,
                i64::MAX,
                slots,
            ),
        });
        decoded.expect("a head's own bits decode");
    }

    /// The points as a chunk, leaving the head empty (with its allocation:
    /// see [`Packed::clear`]); `decoded` is a buffer to decode them into.
    /// The bits are a chunk's XOR coding already: they are the chunk unless
    /// another coding is smaller (`Chunk::encode_packed`).
    pub fn seal(&mut self, decoded: &mut Decoded) -> Option<Chunk> {
        let chunk = match self.count {
            0 => None,
            1 => Chunk::encode(&self.to_vec()).ok(),
            _ => {
                self.decode_to(decoded);
                let xor = &self.bytes[8..(self.bits as usize).div_ceil(8)];
                Chunk::encode_packed(decoded.points(), xor).ok()
            }
        };
        self.clear();
        chunk
    }

    /// Every point, plain.
    pub fn to_vec(&self) -> Vec<Point> {
        let mut points = Vec::with_capacity(self.len());
        points.extend(self.iter());
        points
    }
}

/// The points of a [`Packed`] head, in order.
pub enum Points<'a> {
    One(Option<Point>),
    Bits(chunk::Points<'a>),
}

impl Iterator for Points<'_> {
    type Item = Point;

    #[inline]
    fn next(&mut self) -> Option<Point> {
        match self {
            Points::One(point) => point.take(),
            Points::Bits(points) => points.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::chunk::Chunk;
    use proptest::prelude::*;

    fn packed(points: &[Point]) -> Packed {
        let mut head = Packed::default();
        let mut bytes = 0;
        for &(t, v) in points {
            bytes += head.push(t, v).expect("ascending");
            assert_eq!(bytes, head.heap_bytes());
        }
        head
    }

    impl Packed {
        /// The same head with an allocation of `len` bytes.
        fn with_bytes(mut self, len: usize) -> Packed {
            let mut bytes = self.bytes.into_vec();
            bytes.resize(len, 0);
            self.bytes = bytes.into_boxed_slice();
            self
        }
    }

    fn same(a: &[Point], b: &[Point]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Every prefix reads back bit for bit, and its bits are those of
        /// the XOR chunk of the same points.
        #[test]
        fn appends_read_back_at_every_length(
            steps in proptest::collection::vec((1u64..=u64::MAX / 300, any::<u64>(), 0u8..3), 1..300),
            start in any::<i64>(),
        ) {
            let mut points: Vec<Point> = Vec::new();
            let mut t = start;
            for (i, &(step, bits, kind)) in steps.iter().enumerate() {
                if i > 0 {
                    let step = if kind == 0 { 10 } else { step };
                    match t.checked_add_unsigned(step) {
                        Some(next) => t = next,
                        None => break,
                    }
                }
                let value = match kind {
                    0 => (bits % 1000) as f64 / 10.0,
                    1 => f64::from_bits(bits),
                    _ => points.last().map_or(1.0, |p| p.1),
                };
                points.push((t, value));
            }
            // One buffer for every decode, as the store keeps one.
            let mut decoded = Decoded::default();
            let mut head = Packed::default();
            for (i, &(t, v)) in points.iter().enumerate() {
                head.push(t, v).unwrap();
                prop_assert!(same(&head.to_vec(), &points[..=i]));
                head.decode_to(&mut decoded);
                prop_assert!(same(decoded.points(), &points[..=i]));
                prop_assert_eq!(head.first_ts(), Some(points[0].0));
                prop_assert_eq!(head.len(), i + 1);
            }
            let chunk = Chunk::encode(&points).unwrap();
            if chunk.scheme() == Ok(chunk::Scheme::Xor) && points.len() > 1 {
                prop_assert_eq!(&head.bytes[8..(head.bits as usize).div_ceil(8)], chunk.bytes());
            }
        }
    }

    #[test]
    fn a_cleared_head_keeps_its_allocation_and_fills_it_again() {
        let points: Vec<Point> = (0..240).map(|t| (10 * t, (t % 7) as f64 * 1.25)).collect();
        let mut head = packed(&points);
        let bytes = head.heap_bytes();
        head.clear();
        assert_eq!((head.len(), head.heap_bytes(), head.to_vec()), (0, bytes, vec![]));
        for &(t, v) in &points {
            assert_eq!(head.push(t + 1, v + 1.0), Ok(0));
        }
        let moved: Vec<Point> = points.iter().map(|&(t, v)| (t + 1, v + 1.0)).collect();
        assert_eq!(head.to_vec(), moved);
        assert_eq!(head, packed(&moved).with_bytes(bytes));
    }

    #[test]
    fn one_point_allocates_nothing() {
        let head = packed(&[(5, 0.5)]);
        assert_eq!((head.heap_bytes(), head.to_vec()), (0, vec![(5, 0.5)]));
        assert_eq!(Packed::default().iter().next(), None);
        assert_eq!(Packed::default().first_ts(), None);
    }

    #[test]
    fn out_of_order_and_duplicate_points_are_refused() {
        let mut head = packed(&[(5, 0.5), (7, 1.5)]);
        assert_eq!(head.push(7, 2.0), Err(PushError::Unsorted));
        assert_eq!(head.push(6, 2.0), Err(PushError::Unsorted));
        assert_eq!(head.push(i64::MIN, 2.0), Err(PushError::Unsorted));
        assert_eq!(head.to_vec(), [(5, 0.5), (7, 1.5)]);
        assert!(head.push(8, 2.0).is_ok());
        assert_eq!(head.to_vec(), [(5, 0.5), (7, 1.5), (8, 2.0)]);
        let mut full = packed(&(0..MAX_POINTS as i64).map(|t| (t, 0.0)).collect::<Vec<_>>());
        assert_eq!(full.push(i64::MAX, 0.0), Err(PushError::Full));
        assert_eq!(full.len(), MAX_POINTS);
    }

    #[test]
    fn steady_points_take_a_few_bits_and_allocations_fit_the_allocator() {
        // A steady interval and a constant value: a bit for the timestamp,
        // one for the value.
        let head = packed(&(0..240).map(|t| (1_700_000_000 + 10 * t, 1.0)).collect::<Vec<_>>());
        assert_eq!(head.bits, 64 + 67 + 10 + 1 + 2 * 238);
        assert!(head.heap_bytes() < 128, "{}", head.heap_bytes());
        assert_eq!(head.heap_bytes() % 16, 8);
        assert_eq!([1, 24, 25, 40, 41].map(allocation_for), [24, 24, 40, 40, 56]);
    }
}
