//! A sealed chunk: up to [`MAX_POINTS`] points of one series, bit-packed,
//! immutable, with its time bounds and point count kept outside the bits so
//! that a read can skip it without decoding.
//!
//! Timestamps are delta-of-delta coded as in Facebook's Gorilla (VLDB 2015,
//! section 4.1.1), with buckets sized for what metrics send: a steady
//! interval costs one bit a point, a one-second jitter five, a gap of a few
//! intervals ten. Values take one of three codings, whichever is smallest
//! for the chunk:
//! - one value for every point (a flag, an idle counter): no bits a point;
//! - Gorilla's XOR of each value's bits with the previous one's (section
//!   4.1.2), for any f64;
//! - scaled integers: when every value of the chunk is `m / 10^k` for an
//!   integer `m` (exactly: the division gives back the same bits), the
//!   integers `m`, as differences of order 0 (from the first), 1 or 2, with
//!   their common power of two taken out, zig-zag folded and Rice coded with
//!   an escape for outliers. Counters, integer gauges and gauges of one or two
//!   decimals, most of what a metrics server holds, cost a few bits a point
//!   instead of the tens XOR needs for a value whose decimal digits change.
//!
//! Every value comes back with exactly the bits it was stored with (-0.0, NaN
//! payloads, infinities and subnormals take the XOR coding: none of them is a
//! scaled integer that divides back to itself).
//!
//! ```text
//! chunk    = scheme:3 [decimal] value0 { ts value }*(count-1) zero-padding
//! scheme   = 0 XOR | 1 constant | 2, 3, 4 decimal of order 0, 1, 2
//! decimal  = scale:5 (k <= MAX_SCALE)  shift:6  rice:6
//! value0   = XOR, constant: bits:64 | decimal: width:7 (<= 64) zigzag(m0):width
//! ts       = 0 (dod 0) | 10 dod:3 | 110 dod:7 | 1110 dod:16 | 11110 dod:32 | 11111 dod:64
//! value    = nothing (constant) | XOR | decimal
//! XOR      = 0 (same bits) | 10 meaningful bits in the previous window
//!          | 11 leading:5 len-1:6 meaningful:len
//! decimal  = q ones 0 low:rice (z = q << rice | low, q < 16)
//!          | 16 ones width-1:6 z:width (escape)
//! ```
//! The first timestamp is the chunk's `min_ts`; dod is the change of the
//! step between timestamps (two's complement in its field), counting the step
//! before the first as 0. For the decimal coding, `z = zigzag(residual >>
//! shift)` where the residual is `m[i] - m[0]`, `m[i] - m[i-1]` or the change
//! of that difference, by order; all arithmetic wraps, so any i64 round-trips.

use super::bits::{peek_at, read_at, BitCounter, BitReader, BitSink, BitWriter};

/// Most points in a chunk (its count is a u16).
pub const MAX_POINTS: usize = u16::MAX as usize;

/// Most decimals of the scaled-integer coding: 10^18 is the largest power of
/// ten whose integers reach 19 significant digits in an i64, more than any
/// f64 has (17).
pub const MAX_SCALE: u8 = 18;

/// Why points could not be made a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("a chunk needs at least one point")]
    Empty,
    #[error("a chunk holds at most {MAX_POINTS} points")]
    TooMany,
    #[error("timestamps of a chunk must be strictly ascending")]
    Unsorted,
}

/// Why bytes are not a valid chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("chunk ends before its last point")]
    Truncated,
    #[error("corrupt chunk: {0}")]
    Corrupt(&'static str),
}

/// How a chunk's values are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Xor,
    Constant,
    /// Integers `m` with value `m / 10^scale`, differenced `order` times.
    Decimal {
        scale: u8,
        order: u8,
    },
}

/// Points sealed into bits. See the module documentation for the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    min_ts: i64,
    max_ts: i64,
    bytes: Box<[u8]>,
    count: u16,
}

impl Chunk {
    /// Encodes `points`, which must be strictly ascending by timestamp.
    pub fn encode(points: &[(i64, f64)]) -> Result<Chunk, EncodeError> {
        if points.is_empty() {
            return Err(EncodeError::Empty);
        }
        let count = u16::try_from(points.len()).map_err(|_| EncodeError::TooMany)?;
        if points.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(EncodeError::Unsorted);
        }
        let (values, bits) = ValueCoding::cheapest(points, None);
        Ok(Self::encode_sorted(points, values, bits, count))
    }

    /// [`Chunk::encode`] of points whose XOR coding is written already, as
    /// `xor` (an open head's bits: the very bytes `encode` writes for the
    /// XOR scheme). Those are kept unless another coding is smaller, so
    /// that sealing a head of floats copies it, and sealing one of decimals
    /// does not count the XOR coding's bits again. `points` are a head's,
    /// ascending: their order is not checked again.
    pub(super) fn encode_packed(points: &[(i64, f64)], xor: &[u8]) -> Result<Chunk, EncodeError> {
        let (Some(&(min_ts, _)), Some(&(max_ts, _))) = (points.first(), points.last()) else {
            return Err(EncodeError::Empty);
        };
        let count = u16::try_from(points.len()).map_err(|_| EncodeError::TooMany)?;
        Ok(match ValueCoding::cheapest(points, Some(xor.len())) {
            (ValueCoding::Xor, _) => Chunk {
                min_ts,
                max_ts,
                bytes: xor.into(),
                count,
            },
            (coding, bits) => Self::encode_sorted(points, coding, bits, count),
        })
    }

    /// Writes `points` (ascending, `count` of them) in `values`' coding,
    /// whose size is `bits` if priced already.
    fn encode_sorted(points: &[(i64, f64)], values: ValueCoding, bits: Option<u64>, count: u16) -> Chunk {
        let (min_ts, max_ts) = (points[0].0, points[points.len() - 1].0);
        // Written into an allocation of the exact size (counted first if
        // not priced): a buffer grown and then shrunk to fit leaves a hole
        // in the heap per chunk, which cost a server 0.1-0.2 B of RSS a
        // point.
        let bits = bits.unwrap_or_else(|| {
            let mut counter = BitCounter::default();
            values.put_points(&mut counter, points);
            counter.0
        });
        let len = usize::try_from(bits.div_ceil(8)).expect("a chunk's bits fit in memory");
        let mut w = BitWriter::with_capacity(len);
        values.put_points(&mut w, points);
        let bytes = w.finish();
        debug_assert_eq!(bytes.len(), bytes.capacity());
        Chunk {
            min_ts,
            max_ts,
            bytes: bytes.into_boxed_slice(),
            count,
        }
    }

    /// A chunk from its stored parts (as [`Chunk::bytes`] and the bounds
    /// gave them); the bits are checked only as they are decoded.
    pub fn from_parts(min_ts: i64, max_ts: i64, count: u16, bytes: Box<[u8]>) -> Result<Chunk, DecodeError> {
        if count == 0 || min_ts > max_ts || (count == 1) != (min_ts == max_ts) {
            return Err(DecodeError::Corrupt("bounds do not fit the count"));
        }
        Ok(Chunk {
            min_ts,
            max_ts,
            bytes,
            count,
        })
    }

    /// The first timestamp.
    pub fn min_ts(&self) -> i64 {
        self.min_ts
    }

    /// The last timestamp.
    pub fn max_ts(&self) -> i64 {
        self.max_ts
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Never true: a chunk has at least one point.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded bits.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How the values are coded (read from the first bits).
    pub fn scheme(&self) -> Result<Scheme, DecodeError> {
        Ok(ValueDecoder::read_header(&mut BitReader::new(&self.bytes))?.scheme())
    }

    /// The points in order. Garbage bits end the iteration early with
    /// [`Points::error`] set.
    pub fn iter(&self) -> Points<'_> {
        Points::new(self)
    }

    /// Every point, or why the bits are not a chunk.
    pub fn decode(&self) -> Result<Vec<(i64, f64)>, DecodeError> {
        let mut out = Vec::with_capacity(self.len());
        self.decode_into(&mut out)?;
        Ok(out)
    }

    /// Appends every point to `out`, or says why the bits are not a chunk
    /// (`out` is then as it was). What [`Chunk::iter`] yields, several
    /// times faster: a loop per value coding, without a decoder's state
    /// machine between points (reads decode whole chunks: a point costs a
    /// few ns here, against the tens its formatting takes).
    pub fn decode_into(&self, out: &mut Vec<(i64, f64)>) -> Result<(), DecodeError> {
        decode_into(&self.bytes, self.min_ts, self.max_ts, self.count, out)
    }

    /// Every point into `out`, in place of what it held (nothing, if the
    /// bits are not a chunk).
    pub fn decode_to(&self, out: &mut Decoded) -> Result<(), DecodeError> {
        out.fill(self.count, |slots| {
            decode_prefix::<false>(&self.bytes, self.bytes.len(), self.min_ts, self.max_ts, i64::MAX, slots)
        })
    }

    /// [`Chunk::decode_to`] up to the first point past `until` (which it
    /// holds too): what a range read that ends inside the chunk needs,
    /// without decoding the rest. The bits after that point are not checked.
    pub fn decode_until_to(&self, until: i64, out: &mut Decoded) -> Result<(), DecodeError> {
        out.fill(self.count, |slots| {
            decode_prefix::<true>(&self.bytes, self.bytes.len(), self.min_ts, self.max_ts, until, slots)
        })
    }
}

/// Decoded points, in a buffer that keeps its slots from one decode to the
/// next: a `Vec` cleared and filled again is zeroed (`resize`) before the
/// loop writes its slots, which for a 480-point chunk (7,680 bytes) cost
/// more than a short range's own points.
#[derive(Debug, Default)]
pub struct Decoded {
    slots: Vec<(i64, f64)>,
    /// How many of the slots hold this decode's points.
    len: usize,
}

impl Decoded {
    /// The points of the last decode.
    #[inline]
    pub fn points(&self) -> &[(i64, f64)] {
        &self.slots[..self.len]
    }

    /// Holds no points, and keeps its slots.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Hands `decode` `count` slots (zeroed only the first time they are
    /// used) and keeps as many points as it says it decoded.
    pub(super) fn fill(
        &mut self,
        count: u16,
        decode: impl FnOnce(&mut [(i64, f64)]) -> Result<usize, DecodeError>,
    ) -> Result<(), DecodeError> {
        let count = usize::from(count);
        if self.slots.len() < count {
            self.slots.resize(count, (0, 0.0));
        }
        let filled = decode(&mut self.slots[..count]);
        self.len = *filled.as_ref().unwrap_or(&0);
        filled.map(drop)
    }
}

/// [`Chunk::decode_into`] for a chunk's parts kept elsewhere (an open
/// head's).
pub(super) fn decode_into(
    bytes: &[u8],
    min_ts: i64,
    max_ts: i64,
    count: u16,
    out: &mut Vec<(i64, f64)>,
) -> Result<(), DecodeError> {
    let start = out.len();
    out.resize(start + usize::from(count), (0, 0.0));
    match decode_prefix::<false>(bytes, bytes.len(), min_ts, max_ts, i64::MAX, &mut out[start..]) {
        Ok(filled) => {
            out.truncate(start + filled);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// [`decode_into`] for the chunk in the first `len` bytes of `bytes`, the
/// rest zeros (an open head's allocation): reads may look past `len`
/// without leaving `bytes`, so fewer of them take the slow way of the end.
///
/// One loop per value coding. A point's fields are cut out of 64-bit words
/// ([`peek_at`]); whether the bits ran out, a timestamp left its order or
/// bounds, or a field was corrupt is gathered as the loop goes and checked
/// once after it, so the loop has no exit but its count. Bits past the end
/// read as zeros meanwhile, so garbage costs at most the count's points.
///
/// The points go into `out`, one slot each (its length is the chunk's
/// count: no capacity check per point); returns how many were decoded.
/// With `STOP`, stops after the first point past `until` (a range read
/// needs no more; the bits after it are then not checked); without, the
/// loops have no such test (5 instructions a point).
pub(super) fn decode_prefix<const STOP: bool>(
    bytes: &[u8],
    len: usize,
    min_ts: i64,
    max_ts: i64,
    until: i64,
    out: &mut [(i64, f64)],
) -> Result<usize, DecodeError> {
    let Some((first, slots)) = out.split_first_mut() else {
        return Err(DecodeError::Corrupt("bounds do not fit the count"));
    };
    let limit = len * 8;
    let mut r = BitReader::new(&bytes[..len]);
    let values = ValueDecoder::read_header(&mut r)?;
    let mut pos = r.position();
    *first = (min_ts, values.first_value());
    if STOP && min_ts > until {
        return Ok(1);
    }
    // Points decoded after the first: fewer than the count when one past
    // `until` stopped the loop.
    let mut filled = slots.len();
    let mut ts = Timestamps {
        ts: min_ts,
        delta: 0,
        bad: false,
    };
    match values {
        ValueDecoder::Constant(v) => {
            for (i, slot) in slots.iter_mut().enumerate() {
                let t = ts.next(bytes, &mut pos);
                *slot = (t, v);
                if STOP && t > until {
                    filled = i + 1;
                    break;
                }
            }
        }
        ValueDecoder::Xor(xor) => {
            let mut prev = xor.prev;
            // No window before the first `11`: a leading count of 32 (five
            // bits hold at most 31) marks it unset, and a `10` before it
            // corrupt.
            let (mut leading, mut len) = (32u32, 32u32);
            for (i, slot) in slots.iter_mut().enumerate() {
                // One word serves the timestamp and, when it is short (it
                // nearly always is), the value's control bits and often its
                // meaningful bits too: at least 57 bits of it are real.
                let word = peek_at(bytes, pos);
                let (t, used) = ts.next_in(bytes, pos, word);
                pos += used as usize;
                // `used` from here: the bits of `value` already consumed.
                let (value, used) = if used <= 44 {
                    (word << used, used)
                } else {
                    (peek_at(bytes, pos), 0)
                };
                if value >> 63 != 0 {
                    let control = if (value >> 62) & 1 == 1 {
                        leading = (value >> 57) as u32 & 31;
                        len = ((value >> 51) as u32 & 63) + 1;
                        // A window past 64 bits is corrupt; clamped, so
                        // that the shifts below stay in range.
                        ts.bad |= leading + len > 64;
                        len = len.min(64 - leading);
                        13
                    } else {
                        ts.bad |= leading > 31;
                        2
                    };
                    let meaningful = if used + control + len <= 57 {
                        (value << control) >> (64 - len)
                    } else {
                        read_at(bytes, pos + control as usize, len)
                    };
                    prev ^= meaningful << (64 - leading - len);
                    pos += (control + len) as usize;
                } else {
                    pos += 1;
                }
                *slot = (t, f64::from_bits(prev));
                if STOP && t > until {
                    filled = i + 1;
                    break;
                }
            }
        }
        ValueDecoder::Decimal { params, .. } => {
            let (mut m, mut step) = (params.first, 0i64);
            let rice = params.rice;
            for (i, slot) in slots.iter_mut().enumerate() {
                let t = ts.next(bytes, &mut pos);
                let word = peek_at(bytes, pos);
                let q = (!word).leading_zeros().min(RICE_ESCAPE);
                let z = if q < RICE_ESCAPE {
                    let used = q + 1 + rice;
                    // The low part from the same word when it holds it
                    // (`>> 1 >> 63 - rice` is 0 for a parameter of 0).
                    let low = if used <= 57 {
                        ((word << (q + 1)) >> 1) >> (63 - rice)
                    } else if rice == 0 {
                        0
                    } else {
                        read_at(bytes, pos + q as usize + 1, rice)
                    };
                    pos += used as usize;
                    // Bits shifted out of garbage are lost, harmlessly.
                    (u64::from(q).wrapping_shl(rice)) | low
                } else {
                    let width = ((word << RICE_ESCAPE) >> 58) as u32 + 1;
                    let z = read_at(bytes, pos + RICE_ESCAPE as usize + 6, width);
                    pos += (RICE_ESCAPE + 6 + width) as usize;
                    z
                };
                let residual = unzigzag(z).wrapping_shl(params.shift);
                m = match params.order {
                    0 => params.first.wrapping_add(residual),
                    1 => m.wrapping_add(residual),
                    _ => {
                        step = step.wrapping_add(residual);
                        m.wrapping_add(step)
                    }
                };
                *slot = (t, unscale(m, params.scale));
                if STOP && t > until {
                    filled = i + 1;
                    break;
                }
            }
        }
    }
    if pos > limit {
        return Err(DecodeError::Truncated);
    }
    if ts.bad {
        return Err(DecodeError::Corrupt(
            "timestamp out of order, or XOR window past 64 bits or reused before set",
        ));
    }
    if filled < slots.len() {
        // Stopped early: the rest of the bits is not looked at.
        return Ok(1 + filled);
    }
    // The last point's (the first's when it is the only one).
    if ts.ts != max_ts {
        return Err(DecodeError::Corrupt("last timestamp is not the chunk's last"));
    }
    if limit - pos >= 8 {
        return Err(DecodeError::Corrupt("bytes after the last point"));
    }
    Ok(1 + filled)
}

/// The timestamps of a whole-chunk decode: each one checked against the
/// last, the verdict kept for the end (with the values' own). Ascending
/// timestamps are within the chunk's bounds when the last is its last,
/// which is checked after the loop.
struct Timestamps {
    ts: i64,
    delta: i64,
    bad: bool,
}

impl Timestamps {
    /// The next timestamp, from the bits at `pos`, which it moves past them.
    #[inline(always)]
    fn next(&mut self, bytes: &[u8], pos: &mut usize) -> i64 {
        let (t, used) = self.next_in(bytes, *pos, peek_at(bytes, *pos));
        *pos += used as usize;
        t
    }

    /// The next timestamp and the bits it took, from `word`, the bits at
    /// `pos`.
    #[inline(always)]
    fn next_in(&mut self, bytes: &[u8], pos: usize, word: u64) -> (i64, u32) {
        let used = if word >> 63 == 0 {
            1
        } else {
            let (dod, used) = dod_of(bytes, pos, word);
            self.delta = self.delta.wrapping_add(dod);
            used
        };
        let t = self.ts.wrapping_add(self.delta);
        self.bad |= t <= self.ts;
        self.ts = t;
        (t, used)
    }
}

/// A dod other than 0 and the bits it took, from the `word` at `pos`.
#[inline]
fn dod_of(bytes: &[u8], pos: usize, word: u64) -> (i64, u32) {
    let ones = (!word).leading_zeros().min(TS_ESCAPE);
    if ones == TS_ESCAPE {
        return (read_at(bytes, pos + TS_ESCAPE as usize, 64) as i64, TS_ESCAPE + 64);
    }
    let bits = TS_BITS[ones as usize - 1];
    let used = ones + 1 + bits;
    let field = if used <= 57 {
        (word << (ones + 1)) >> (64 - bits)
    } else {
        read_at(bytes, pos + ones as usize + 1, bits)
    };
    (sign_extend(field, bits), used)
}

impl<'a> IntoIterator for &'a Chunk {
    type Item = (i64, f64);
    type IntoIter = Points<'a>;
    fn into_iter(self) -> Points<'a> {
        self.iter()
    }
}

/// Timestamp buckets after the `0` of a zero dod: bucket `j` is `j + 1` one
/// bits, a zero bit, and a dod of `TS_BITS[j]` bits; five ones (no zero)
/// escape to 64 bits. Three bits hold the ±1 and ±2 a one-second jitter of a
/// 10 s interval makes; seven the ±10·n of a gap of up to six intervals;
/// sixteen a stall of hours; 32 days and years.
const TS_BITS: [u32; 4] = [3, 7, 16, 32];
const TS_ESCAPE: u32 = TS_BITS.len() as u32 + 1;

/// The timestamp field of a dod other than 0 that fits 32 bits, as one
/// write: the bucket's prefix (as many ones as its place in [`TS_BITS`],
/// and a zero) and the dod in the bucket's width, with the field's length;
/// None for a wider dod (the escape). Shared by the chunk coder and the
/// open head's.
#[inline(always)]
pub(super) fn timestamp_field(dod: i64) -> Option<(u64, u32)> {
    let (ones, bits): (u32, u32) = match dod {
        -4..=3 => (1, 3),
        -64..=63 => (2, 7),
        -32768..=32767 => (3, 16),
        -2147483648..=2147483647 => (4, 32),
        _ => return None,
    };
    let prefix = ((1u64 << ones) - 1) << 1;
    let field = (dod as u64) & ((1 << bits) - 1);
    Some(((prefix << bits) | field, ones + 1 + bits))
}

#[cfg(test)]
fn fits_signed(v: i64, bits: u32) -> bool {
    let half = 1i64 << (bits - 1);
    (-half..half).contains(&v)
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

/// The reader of [`TimestampEncoder::put`].
#[inline]
fn read_dod(r: &mut BitReader<'_>) -> Result<i64, DecodeError> {
    // One look at the next bits serves the prefix and, but for the widest
    // buckets, the field.
    let word = r.peek();
    let ones = (!word).leading_zeros().min(TS_ESCAPE);
    let bits = match ones {
        0 => {
            r.skip(1).ok_or(DecodeError::Truncated)?;
            return Ok(0);
        }
        _ if ones == TS_ESCAPE => 64,
        _ => TS_BITS[ones as usize - 1],
    };
    if ones < TS_ESCAPE && ones + 1 + bits <= 57 {
        r.skip(ones + 1 + bits).ok_or(DecodeError::Truncated)?;
        return Ok(sign_extend((word << (ones + 1)) >> (64 - bits), bits));
    }
    let prefix = ones + u32::from(ones < TS_ESCAPE);
    r.skip(prefix).ok_or(DecodeError::Truncated)?;
    Ok(sign_extend(r.get(bits).ok_or(DecodeError::Truncated)?, bits))
}

pub(super) struct TimestampEncoder {
    pub(super) prev: i64,
    pub(super) delta: i64,
}

impl TimestampEncoder {
    pub(super) fn new(first: i64) -> Self {
        Self { prev: first, delta: 0 }
    }

    #[inline]
    pub(super) fn put(&mut self, sink: &mut impl BitSink, t: i64) {
        let delta = t.wrapping_sub(self.prev);
        let dod = delta.wrapping_sub(self.delta);
        (self.prev, self.delta) = (t, delta);
        if dod == 0 {
            sink.put_bit(false);
            return;
        }
        match timestamp_field(dod) {
            Some((field, bits)) => sink.put(field, bits),
            None => {
                sink.put_ones(TS_ESCAPE);
                sink.put(dod as u64, 64);
            }
        }
    }
}

/// Rice coding's unary part stops here and escapes to an explicit width: an
/// outlier (a counter reset) costs 16 + 6 + its width bits instead of a
/// run of ones as long as its value.
const RICE_ESCAPE: u32 = 16;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

fn width(z: u64) -> u32 {
    64 - z.leading_zeros()
}

fn put_rice(sink: &mut impl BitSink, z: u64, k: u32) {
    let q = z >> k;
    if q < u64::from(RICE_ESCAPE) && k < 64 - RICE_ESCAPE {
        // One field: q ones, a zero, the low k bits (under 64 bits).
        let prefix = ((1u64 << q) - 1) << 1;
        let low = if k == 0 { 0 } else { z & (u64::MAX >> (64 - k)) };
        sink.put(prefix << k | low, q as u32 + 1 + k);
    } else if q < u64::from(RICE_ESCAPE) {
        sink.put_ones(q as u32);
        sink.put_bit(false);
        sink.put(z, k);
    } else {
        sink.put_ones(RICE_ESCAPE);
        sink.put(u64::from(width(z) - 1), 6);
        sink.put(z, width(z));
    }
}

/// The bits [`put_rice`] writes for `z`, without writing them (what
/// [`rice_prices`] sums from counts).
#[cfg(test)]
fn rice_bits(z: u64, k: u32) -> u64 {
    let q = z >> k;
    if q < u64::from(RICE_ESCAPE) {
        q + 1 + u64::from(k)
    } else {
        u64::from(RICE_ESCAPE + 6 + width(z))
    }
}

/// The bits of `zs` in Rice codes of parameters `lowest` to `lowest + 3`
/// ([`rice_bits`] summed): from one pass that counts the values by
/// `q = z >> lowest`, since each of the four codes' size depends on q
/// alone (and on z's width, `lowest` + q's, where it escapes). Summing
/// four codes a value cost sealing a chunk some 100 instructions a point.
fn rice_prices(zs: &[u64], lowest: u32) -> [u64; 4] {
    // For q of 128 and more every one of the four escapes (q >> 3 >= 16).
    const COUNTED: usize = 128;
    let mut counts = [0u64; COUNTED];
    // The counts past the largest q counted are all zero.
    let mut top = 0;
    let (mut escaped, mut escaped_widths) = (0u64, 0u64);
    for &z in zs {
        let q = z >> lowest;
        if q < COUNTED as u64 {
            counts[q as usize] += 1;
            top = top.max(q as usize);
        } else {
            escaped += 1;
            escaped_widths += u64::from(width(z));
        }
    }
    let mut sums = [0u64; 4];
    for (shift, sum) in sums.iter_mut().enumerate() {
        let k = lowest + shift as u32;
        let escape = u64::from(RICE_ESCAPE + 6);
        *sum = escaped * escape + escaped_widths;
        for (q, &count) in counts[..=top].iter().enumerate().filter(|(_, &count)| count > 0) {
            let z_high = q as u64;
            *sum += count
                * if z_high >> shift < u64::from(RICE_ESCAPE) {
                    (z_high >> shift) + 1 + u64::from(k)
                } else {
                    // z's width: q's above the `lowest` low bits.
                    escape + u64::from(width(z_high) + lowest)
                };
        }
    }
    sums
}

/// The bits of the timestamps of `points` after the first, in any coding.
fn timestamp_bits(points: &[(i64, f64)]) -> u64 {
    let mut counter = BitCounter::default();
    let mut ts = TimestampEncoder::new(points[0].0);
    for &(t, _) in &points[1..] {
        ts.put(&mut counter, t);
    }
    counter.0
}

fn get_rice(r: &mut BitReader<'_>, k: u32) -> Option<u64> {
    let q = r.get_ones(RICE_ESCAPE)?;
    if q < RICE_ESCAPE {
        // Bits shifted out of garbage are lost, harmlessly.
        Some((u64::from(q) << k) | r.get(k)?)
    } else {
        let width = r.get(6)? as u32 + 1;
        r.get(width)
    }
}

/// Powers of ten up to 10^MAX_SCALE, each exact in an f64.
const POW10: [f64; MAX_SCALE as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
];

/// The value of scaled integer `m` at `scale`: the one formula both the
/// encoder's check and the decoder use, so a value that passed the check
/// decodes to the same bits.
fn unscale(m: i64, scale: u8) -> f64 {
    m as f64 / POW10[usize::from(scale)]
}

/// The smallest scale at which every value is an integer over 10^scale that
/// divides back to the very same bits, with those integers.
fn decimal_scale(values: impl Iterator<Item = f64> + Clone) -> Option<(u8, Vec<i64>)> {
    // i64::MAX is 9.22e18; the bound stays below it so that `as` cannot
    // saturate.
    const LIMIT: f64 = 9.0e18;
    let scaled = |v: f64, scale: u8| {
        let x = v * POW10[usize::from(scale)];
        // Rounded half away from zero by the cast's truncation: `f64::round`
        // is a call into libm (25 instructions). Where adding the half
        // rounds (x just under n + 1/2), no integer divides back to `v`
        // anyway.
        let m = (x + 0.5f64.copysign(x)) as i64;
        (x.abs() < LIMIT && unscale(m, scale).to_bits() == v.to_bits()).then_some(m)
    };
    let mut ms = Vec::with_capacity(values.size_hint().0);
    // One pass a scale, left at the first value that does not fit (most
    // failures are at the first value).
    let scale = (0..=MAX_SCALE).find(|&scale| {
        ms.clear();
        values.clone().all(|v| scaled(v, scale).map(|m| ms.push(m)).is_some())
    })?;
    Some((scale, ms))
}

/// The residuals of the scaled integers at `order` (one per point after the
/// first).
fn residuals(ms: &[i64], order: u8) -> impl Iterator<Item = i64> + '_ {
    let mut prev_delta = 0i64;
    ms.windows(2).map(move |w| {
        let delta = w[1].wrapping_sub(w[0]);
        match order {
            0 => w[1].wrapping_sub(ms[0]),
            1 => delta,
            _ => {
                let dod = delta.wrapping_sub(prev_delta);
                prev_delta = delta;
                dod
            }
        }
    })
}

/// The parameters of a decimal coding and its first integer: the
/// `decimal` and `value0` fields of the layout.
#[derive(Debug, Clone, Copy)]
struct Decimal {
    scale: u8,
    order: u8,
    shift: u32,
    rice: u32,
    first: i64,
}

impl Decimal {
    /// Writes the fields after the scheme tag.
    fn put(&self, sink: &mut impl BitSink) {
        sink.put(u64::from(self.scale), 5);
        sink.put(u64::from(self.shift), 6);
        sink.put(u64::from(self.rice), 6);
        let z = zigzag(self.first);
        sink.put(u64::from(width(z)), 7);
        sink.put(z, width(z));
    }

    /// Reads the fields after the tag of a decimal coding of `order`.
    fn get(r: &mut BitReader<'_>, order: u8) -> Result<Decimal, DecodeError> {
        let scale = r.get(5).ok_or(DecodeError::Truncated)? as u8;
        if scale > MAX_SCALE {
            return Err(DecodeError::Corrupt("decimal scale too large"));
        }
        let shift = r.get(6).ok_or(DecodeError::Truncated)? as u32;
        let rice = r.get(6).ok_or(DecodeError::Truncated)? as u32;
        let width = r.get(7).ok_or(DecodeError::Truncated)? as u32;
        if width > 64 {
            return Err(DecodeError::Corrupt("first value wider than 64 bits"));
        }
        let first = unzigzag(r.get(width).ok_or(DecodeError::Truncated)?);
        Ok(Decimal {
            scale,
            order,
            shift,
            rice,
            first,
        })
    }
}

/// A chunk's value coding, chosen before writing.
enum ValueCoding {
    Xor,
    Constant,
    /// With the coded residuals, `zs[i - 1]` for point `i`.
    Decimal(Decimal, Vec<u64>),
}

impl ValueCoding {
    /// The coding that takes the fewest bits for these points' values.
    /// `xor_bytes`: the size of the whole chunk in the XOR coding, when it
    /// is written already (its values' bits are then that less the
    /// timestamps', rounded up to a byte: a tie within it goes to another
    /// coding).
    /// With it, the bits of the whole chunk when they were priced (a
    /// decimal coding's, with the timestamps').
    fn cheapest(points: &[(i64, f64)], xor_bytes: Option<usize>) -> (ValueCoding, Option<u64>) {
        let values = points.iter().map(|p| p.1);
        let first = points[0].1.to_bits();
        if values.clone().all(|v| v.to_bits() == first) {
            return (ValueCoding::Constant, None);
        }
        let Some((scale, ms)) = decimal_scale(values) else {
            return (ValueCoding::Xor, None);
        };
        let timestamps = timestamp_bits(points);
        let mut best = ValueCoding::Xor;
        let mut best_bits = match xor_bytes {
            Some(bytes) => (bytes as u64 * 8).saturating_sub(timestamps),
            None => ValueCoding::xor_bits(points),
        };
        for order in 0..=2 {
            let (candidate, bits) = Self::decimal(scale, order, &ms);
            if bits < best_bits {
                (best, best_bits) = (candidate, bits);
            }
        }
        (best, Some(timestamps + best_bits))
    }

    /// The decimal coding of `ms` at `order`, with the Rice parameter that
    /// codes its residuals in the fewest bits, and its size in bits.
    fn decimal(scale: u8, order: u8, ms: &[i64]) -> (ValueCoding, u64) {
        let common = residuals(ms, order).fold(0, |acc, r| acc | r);
        let shift = if common == 0 { 0 } else { common.trailing_zeros() };
        let zs: Vec<u64> = residuals(ms, order).map(|r| zigzag(r >> shift)).collect();
        // The best Rice parameter is near the width of a typical residual
        // (log2 of the mean, for geometric residuals): try the few below
        // the median width rather than all 64.
        let mut widths = [0usize; 65];
        zs.iter().for_each(|&z| widths[width(z) as usize] += 1);
        let mut below = 0;
        let median = (0..64u32)
            .find(|&w| {
                below += widths[w as usize];
                below > zs.len() / 2
            })
            .unwrap_or(63);
        let lowest = median.saturating_sub(3);
        let sums = rice_prices(&zs, lowest);
        let (rice, values_bits) = (lowest..=median)
            .zip(sums)
            .min_by_key(|&(_, bits)| bits)
            .unwrap_or((0, 0));
        let params = Decimal {
            scale,
            order,
            shift,
            rice,
            first: ms[0],
        };
        let coding = ValueCoding::Decimal(params, zs);
        let mut header = BitCounter::default();
        coding.put_header(&mut header, 0.0);
        (coding, header.0 + values_bits)
    }

    /// The chunk's bits: the header, then every point after the first. A
    /// loop per coding (a match per point cost sealing a chunk some 20
    /// instructions a point).
    fn put_points(&self, sink: &mut impl BitSink, points: &[(i64, f64)]) {
        self.put_header(sink, points[0].1);
        let mut ts = TimestampEncoder::new(points[0].0);
        let rest = &points[1..];
        match self {
            ValueCoding::Decimal(params, zs) => {
                for (&(t, _), &z) in rest.iter().zip(zs) {
                    ts.put(sink, t);
                    put_rice(sink, z, params.rice);
                }
            }
            ValueCoding::Xor => {
                let mut xor = XorState::new(points[0].1.to_bits());
                for &(t, v) in rest {
                    ts.put(sink, t);
                    xor.put(sink, v.to_bits());
                }
            }
            ValueCoding::Constant => rest.iter().for_each(|&(t, _)| ts.put(sink, t)),
        }
    }

    /// Bits of the values of `points` in the XOR coding, its header's too.
    fn xor_bits(points: &[(i64, f64)]) -> u64 {
        let mut c = BitCounter::default();
        ValueCoding::Xor.put_header(&mut c, points[0].1);
        let mut xor = XorState::new(points[0].1.to_bits());
        points[1..].iter().for_each(|&(_, v)| xor.put(&mut c, v.to_bits()));
        c.0
    }

    /// The scheme, its parameters and the first value.
    fn put_header(&self, sink: &mut impl BitSink, first_value: f64) {
        match self {
            ValueCoding::Xor | ValueCoding::Constant => {
                let tag = if matches!(self, ValueCoding::Xor) {
                    TAG_XOR
                } else {
                    TAG_CONSTANT
                };
                sink.put(tag, TAG_BITS);
                sink.put(first_value.to_bits(), 64);
            }
            ValueCoding::Decimal(params, _) => {
                sink.put(TAG_DECIMAL + u64::from(params.order), TAG_BITS);
                params.put(sink);
            }
        }
    }
}

/// Gorilla's XOR coding between values: the previous bits and the window of
/// meaningful bits (leading zeros, length) last written.
pub(super) struct XorState {
    pub(super) prev: u64,
    pub(super) window: Option<(u32, u32)>,
}

impl XorState {
    pub(super) fn new(first: u64) -> Self {
        Self {
            prev: first,
            window: None,
        }
    }

    pub(super) fn put(&mut self, sink: &mut impl BitSink, bits: u64) {
        let xor = bits ^ self.prev;
        self.prev = bits;
        if xor == 0 {
            sink.put_bit(false);
            return;
        }
        // Five bits hold at most 31 leading zeros; more are sent as
        // meaningful zero bits.
        let leading = xor.leading_zeros().min(31);
        let trailing = xor.trailing_zeros();
        if let Some((wl, wlen)) = self.window {
            let wt = 64 - wl - wlen;
            if leading >= wl && trailing >= wt {
                sink.put(0b10, 2);
                sink.put(xor >> wt, wlen);
                return;
            }
        }
        let len = 64 - leading - trailing;
        sink.put(0b11, 2);
        sink.put(u64::from(leading), 5);
        sink.put(u64::from(len - 1), 6);
        sink.put(xor >> trailing, len);
        self.window = Some((leading, len));
    }

    #[inline]
    fn get(&mut self, r: &mut BitReader<'_>) -> Result<u64, DecodeError> {
        // The control bits and a new window's fields from one look.
        let word = r.peek();
        if word >> 63 == 0 {
            r.skip(1).ok_or(DecodeError::Truncated)?;
            return Ok(self.prev);
        }
        if (word >> 62) & 1 == 1 {
            let leading = (word >> 57) as u32 & 31;
            let len = (word >> 51) as u32 & 63;
            r.skip(13).ok_or(DecodeError::Truncated)?;
            let len = len + 1;
            if leading + len > 64 {
                return Err(DecodeError::Corrupt("XOR window past 64 bits"));
            }
            self.window = Some((leading, len));
        } else {
            r.skip(2).ok_or(DecodeError::Truncated)?;
        }
        let (leading, len) = self
            .window
            .ok_or(DecodeError::Corrupt("XOR window reused before set"))?;
        let meaningful = r.get(len).ok_or(DecodeError::Truncated)?;
        self.prev ^= meaningful << (64 - leading - len);
        Ok(self.prev)
    }
}

/// The scheme field: its width and values (decimal codings take
/// `TAG_DECIMAL + order`).
pub(super) const TAG_BITS: u32 = 3;
pub(super) const TAG_XOR: u64 = 0;
const TAG_CONSTANT: u64 = 1;
const TAG_DECIMAL: u64 = 2;

/// Reads values in a chunk's coding.
enum ValueDecoder {
    Xor(XorState),
    Constant(f64),
    /// With the last integer and the last difference.
    Decimal {
        params: Decimal,
        prev: i64,
        delta: i64,
    },
}

impl ValueDecoder {
    /// Reads the scheme and its parameters and the first value; returns the
    /// decoder, whose `first_value` is that value.
    fn read_header(r: &mut BitReader<'_>) -> Result<ValueDecoder, DecodeError> {
        let tag = r.get(TAG_BITS).ok_or(DecodeError::Truncated)?;
        match tag {
            TAG_XOR | TAG_CONSTANT => {
                let first = r.get(64).ok_or(DecodeError::Truncated)?;
                return Ok(if tag == TAG_XOR {
                    ValueDecoder::Xor(XorState::new(first))
                } else {
                    ValueDecoder::Constant(f64::from_bits(first))
                });
            }
            _ if tag > TAG_DECIMAL + 2 => return Err(DecodeError::Corrupt("unknown value scheme")),
            _ => {}
        }
        let params = Decimal::get(r, (tag - TAG_DECIMAL) as u8)?;
        Ok(ValueDecoder::Decimal {
            params,
            prev: params.first,
            delta: 0,
        })
    }

    fn scheme(&self) -> Scheme {
        match *self {
            ValueDecoder::Xor(_) => Scheme::Xor,
            ValueDecoder::Constant(_) => Scheme::Constant,
            ValueDecoder::Decimal { params, .. } => Scheme::Decimal {
                scale: params.scale,
                order: params.order,
            },
        }
    }

    fn first_value(&self) -> f64 {
        match *self {
            ValueDecoder::Xor(ref x) => f64::from_bits(x.prev),
            ValueDecoder::Constant(v) => v,
            ValueDecoder::Decimal { params, .. } => unscale(params.first, params.scale),
        }
    }

    fn next_value(&mut self, r: &mut BitReader<'_>) -> Result<f64, DecodeError> {
        match self {
            ValueDecoder::Xor(x) => x.get(r).map(f64::from_bits),
            ValueDecoder::Constant(v) => Ok(*v),
            ValueDecoder::Decimal { params, prev, delta } => {
                let z = get_rice(r, params.rice).ok_or(DecodeError::Truncated)?;
                let residual = unzigzag(z).wrapping_shl(params.shift);
                let m = match params.order {
                    0 => params.first.wrapping_add(residual),
                    1 => prev.wrapping_add(residual),
                    _ => {
                        *delta = delta.wrapping_add(residual);
                        prev.wrapping_add(*delta)
                    }
                };
                *prev = m;
                Ok(unscale(m, params.scale))
            }
        }
    }
}

/// Decodes a chunk in order: an iterator of points, or, through
/// [`Points::next_point`], of results. Bounded work whatever the bits: one
/// step per point of the chunk's count, each reading a bounded number of
/// bits.
pub struct Points<'a> {
    reader: BitReader<'a>,
    values: Option<ValueDecoder>,
    max_ts: i64,
    left: u16,
    ts: i64,
    delta: i64,
    error: Option<DecodeError>,
}

impl<'a> Points<'a> {
    fn new(chunk: &'a Chunk) -> Self {
        Self::over(&chunk.bytes, chunk.min_ts, chunk.max_ts, chunk.count)
    }

    /// The points of a chunk's bits kept elsewhere (an open head's).
    pub(super) fn over(bytes: &'a [u8], min_ts: i64, max_ts: i64, count: u16) -> Self {
        Points {
            reader: BitReader::new(bytes),
            values: None,
            max_ts,
            left: count,
            ts: min_ts,
            delta: 0,
            error: None,
        }
    }

    /// The next point, None after the last, or why the bits are not a chunk.
    pub fn next_point(&mut self) -> Result<Option<(i64, f64)>, DecodeError> {
        if self.left == 0 {
            return Ok(None);
        }
        let point = match &mut self.values {
            None => {
                let values = ValueDecoder::read_header(&mut self.reader)?;
                let first = values.first_value();
                self.values = Some(values);
                (self.ts, first)
            }
            Some(values) => {
                let dod = read_dod(&mut self.reader)?;
                self.delta = self.delta.wrapping_add(dod);
                let t = self.ts.wrapping_add(self.delta);
                if t <= self.ts || t > self.max_ts {
                    return Err(DecodeError::Corrupt("timestamp out of order or bounds"));
                }
                self.ts = t;
                (t, values.next_value(&mut self.reader)?)
            }
        };
        self.left -= 1;
        if self.left == 0 {
            if point.0 != self.max_ts {
                return Err(DecodeError::Corrupt("last timestamp is not the chunk's last"));
            }
            if self.reader.remaining() >= 8 {
                return Err(DecodeError::Corrupt("bytes after the last point"));
            }
        }
        Ok(Some(point))
    }

    /// Why the iteration ended early, if it did.
    pub fn error(&self) -> Option<DecodeError> {
        self.error
    }
}

impl Iterator for Points<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        match self.next_point() {
            Ok(point) => point,
            Err(e) => {
                self.error = Some(e);
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Encodes, decodes, and checks every point bit for bit; returns the
    /// chunk.
    fn round_trip(points: &[(i64, f64)]) -> Chunk {
        let chunk = Chunk::encode(points).expect("valid points");
        let back = chunk.decode().expect("a chunk just encoded decodes");
        assert_eq!(back.len(), points.len());
        for (a, b) in points.iter().zip(&back) {
            assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()), "{a:?} came back as {b:?}");
        }
        let iterated: Vec<(u64, u64)> = chunk.iter().map(|p| (p.0 as u64, p.1.to_bits())).collect();
        let decoded: Vec<(u64, u64)> = back.iter().map(|p| (p.0 as u64, p.1.to_bits())).collect();
        assert_eq!(iterated, decoded, "the iterator and decode_into agree");
        // Up to a bound: the points up to the first past it.
        let n = points.len();
        // One buffer for all of them, the whole chunk first: what a longer
        // decode left in it is not part of a shorter one.
        let bits = |points: &[(i64, f64)]| points.iter().map(|p| (p.0, p.1.to_bits())).collect::<Vec<_>>();
        let mut out = Decoded::default();
        chunk.decode_to(&mut out).expect("a chunk just encoded decodes");
        assert_eq!(bits(out.points()), bits(&back));
        for k in [n - 1, n / 2, n / 3, 1.min(n - 1), 0] {
            for until in [points[k].0, points[k].0.saturating_sub(1)] {
                chunk
                    .decode_until_to(until, &mut out)
                    .expect("a chunk just encoded decodes");
                let want = points.iter().position(|p| p.0 > until).map_or(n, |i| i + 1);
                assert_eq!(bits(out.points()), bits(&back[..want]), "until {until}");
            }
        }
        let again = Chunk::from_parts(chunk.min_ts(), chunk.max_ts(), chunk.len() as u16, chunk.bytes().into());
        assert_eq!(again.as_ref(), Ok(&chunk));
        chunk
    }

    proptest! {
        /// The four Rice codes priced from counts cost what coding each
        /// value does, escapes included.
        #[test]
        fn rice_prices_are_the_sums_of_the_codes(
            zs in proptest::collection::vec(prop_oneof![0u64..64, 0u64..5000, any::<u64>()], 0..300),
            lowest in 0u32..61,
        ) {
            let direct: Vec<u64> = (0..4).map(|j| zs.iter().map(|&z| rice_bits(z, lowest + j)).sum()).collect();
            prop_assert_eq!(rice_prices(&zs, lowest).to_vec(), direct.clone());
            for j in 0..4 {
                let mut counter = BitCounter::default();
                zs.iter().for_each(|&z| put_rice(&mut counter, z, lowest + j));
                prop_assert_eq!(counter.0, direct[j as usize]);
            }
        }
    }

    /// The timestamp fields' buckets are the layout's (`TS_BITS`: the
    /// first width that holds the dod), at every bucket's edges.
    #[test]
    fn timestamp_fields_follow_the_layout() {
        let edges = [1i64, 3, 4, 63, 64, 32767, 32768, i32::MAX as i64, 1 << 31, i64::MAX];
        for dod in edges.iter().flat_map(|&e| [e, -e, e - 1, -e - 1]).filter(|&d| d != 0) {
            let want = TS_BITS.iter().position(|&bits| fits_signed(dod, bits)).map(|j| {
                let (ones, bits) = (j as u32 + 1, TS_BITS[j]);
                let prefix = ((1u64 << ones) - 1) << 1;
                ((prefix << bits) | (dod as u64 & ((1 << bits) - 1)), ones + 1 + bits)
            });
            assert_eq!(timestamp_field(dod), want, "{dod}");
        }
    }

    /// Points at 10 s steps from `t0` with these values.
    fn every_10s(t0: i64, values: impl IntoIterator<Item = f64>) -> Vec<(i64, f64)> {
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (t0 + 10 * i as i64, v))
            .collect()
    }

    /// Timestamps: strictly ascending from arbitrary steps, small (jitter),
    /// medium (gaps) and anything (the whole i64 range).
    fn timestamps(n: usize) -> impl Strategy<Value = Vec<i64>> {
        let step = prop_oneof![
            4 => Just(10u64),
            3 => 9u64..=11,
            2 => 1u64..=1000,
            1 => 1u64..=u64::MAX / 64,
        ];
        (any::<i64>(), proptest::collection::vec(step, n)).prop_map(|(start, steps)| {
            let mut t = start;
            let mut out = vec![t];
            for s in steps {
                match t.checked_add_unsigned(s) {
                    Some(next) => t = next,
                    None => break,
                }
                out.push(t);
            }
            out
        })
    }

    /// Values of every kind the codec distinguishes: any bits at all
    /// (NaNs, infinities, subnormals, -0.0), decimals of a few digits, and
    /// integers, mixed or in runs.
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            (-100_000i64..100_000, 0u32..4).prop_map(|(m, k)| m as f64 / 10f64.powi(k as i32)),
            any::<i64>().prop_map(|m| m as f64),
            (any::<i32>(), 0u32..19).prop_map(|(m, k)| m as f64 / 10f64.powi(k as i32)),
            prop::sample::select(vec![
                0.0,
                -0.0,
                f64::NAN,
                -f64::NAN,
                f64::from_bits(0x7ff0_0000_0000_0001),
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::MIN_POSITIVE,
                f64::from_bits(1),
                f64::MAX,
                f64::MIN,
                f64::EPSILON,
                9.0e18,
                -9.223372036854776e18,
            ]),
        ]
    }

    fn points() -> impl Strategy<Value = Vec<(i64, f64)>> {
        (1usize..300).prop_flat_map(|n| {
            let values = prop_oneof![
                proptest::collection::vec(value(), n),
                // One kind for the whole chunk: the decimal coding's case.
                (
                    -1_000_000i64..1_000_000,
                    0u32..3,
                    proptest::collection::vec(-50i64..50, n)
                )
                    .prop_map(|(start, k, steps)| {
                        let mut m = start;
                        steps
                            .into_iter()
                            .map(|s| {
                                m += s;
                                m as f64 / 10f64.powi(k as i32)
                            })
                            .collect()
                    }),
            ];
            (timestamps(n), values).prop_map(|(ts, vs)| ts.into_iter().zip(vs).collect::<Vec<(i64, f64)>>())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_points_come_back_bit_for_bit(points in points()) {
            round_trip(&points);
        }

        #[test]
        fn decimal_detection_never_changes_a_value(values in proptest::collection::vec(value(), 1..50)) {
            if let Some((scale, ms)) = decimal_scale(values.iter().copied()) {
                for (v, m) in values.iter().zip(ms) {
                    prop_assert_eq!(unscale(m, scale).to_bits(), v.to_bits());
                }
            }
        }

        /// Garbage bits under any header: an error or points, never a
        /// panic, never more points than the count.
        #[test]
        fn garbage_decodes_to_an_error_or_points(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            min in any::<i64>(),
            span in any::<u64>(),
            count in 1u16..500,
        ) {
            let max = min.saturating_add_unsigned(span);
            if let Ok(chunk) = Chunk::from_parts(min, max, count, bytes.into()) {
                let mut it = chunk.iter();
                let mut n = 0;
                for (t, _) in it.by_ref() {
                    prop_assert!((min..=max).contains(&t));
                    n += 1;
                }
                prop_assert!(n <= usize::from(count));
                prop_assert!(it.error().is_some() || n == usize::from(count));
                // The loop decoder, which checks its bits only after its
                // loop, finds the same points or an error too.
                let iterated: Vec<(i64, u64)> = chunk.iter().map(|p| (p.0, p.1.to_bits())).collect();
                match chunk.decode() {
                    Ok(points) => {
                        prop_assert!(it.error().is_none());
                        prop_assert_eq!(iterated, points.iter().map(|p| (p.0, p.1.to_bits())).collect::<Vec<_>>());
                    }
                    Err(_) => prop_assert!(it.error().is_some()),
                }
            }
        }

        /// A valid chunk with one bit flipped decodes to an error or to
        /// points, without a panic.
        #[test]
        fn flipped_bits_never_panic(points in points(), flip in any::<prop::sample::Index>()) {
            let chunk = Chunk::encode(&points).unwrap();
            let mut bytes = chunk.bytes().to_vec();
            let bit = flip.index(bytes.len() * 8);
            bytes[bit / 8] ^= 0x80 >> (bit % 8);
            let bad = Chunk::from_parts(chunk.min_ts(), chunk.max_ts(), chunk.len() as u16, bytes.into()).unwrap();
            // The loop decoder and the iterator find the same points, or
            // both an error.
            let mut it = bad.iter();
            let iterated: Vec<(i64, u64)> = it.by_ref().map(|p| (p.0, p.1.to_bits())).collect();
            match bad.decode() {
                Ok(points) => {
                    prop_assert!(it.error().is_none());
                    prop_assert_eq!(iterated, points.iter().map(|p| (p.0, p.1.to_bits())).collect::<Vec<_>>());
                }
                Err(_) => prop_assert!(it.error().is_some()),
            }
        }
    }

    #[test]
    fn special_values_come_back_exactly() {
        let specials = [
            -0.0,
            0.0,
            f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::from_bits(0xfff0_0000_0000_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(1),
            f64::from_bits(0x000f_ffff_ffff_ffff),
            f64::MAX,
            f64::MIN,
            1e-300,
            1e300,
            0.1,
            0.30000000000000004,
        ];
        round_trip(&every_10s(0, specials));
        for v in specials {
            round_trip(&every_10s(0, [v, v, v]));
            round_trip(&every_10s(0, [1.0, v, 2.0]));
        }
        // -0.0 among integers is not an integer: the XOR coding keeps it.
        let chunk = round_trip(&every_10s(0, [1.0, -0.0, 2.0]));
        assert_eq!(chunk.scheme(), Ok(Scheme::Xor));
    }

    #[test]
    fn extreme_timestamps_come_back() {
        round_trip(&[(i64::MIN, 1.0), (i64::MAX, 2.0)]);
        round_trip(&[(i64::MIN, 1.0), (-1, 2.0), (0, 3.0), (i64::MAX, 4.0)]);
        round_trip(&[(i64::MAX - 2, 1.0), (i64::MAX - 1, 2.0), (i64::MAX, 3.0)]);
        round_trip(&[(42, 1.0)]);
    }

    #[test]
    fn the_coding_fits_the_values() {
        let scheme = |values: Vec<f64>| round_trip(&every_10s(1_700_000_000, values)).scheme().unwrap();
        // A counter: integers, steady increments, differences of order 2.
        let counter: Vec<f64> = (0..120).map(|i| (1000 + 7 * i) as f64).collect();
        assert_eq!(scheme(counter), Scheme::Decimal { scale: 0, order: 2 });
        let percent: Vec<f64> = (0..120).map(|i| ((i * 37) % 1000) as f64 / 10.0).collect();
        assert!(matches!(scheme(percent), Scheme::Decimal { scale: 1, .. }));
        let load: Vec<f64> = (0..120).map(|i| (i % 7) as f64 / 100.0 + 1.0).collect();
        assert!(matches!(scheme(load), Scheme::Decimal { scale: 2, .. }));
        let ratios: Vec<f64> = (1..121).map(|i| 1.0 / i as f64).collect();
        assert_eq!(scheme(ratios), Scheme::Xor);
    }

    #[test]
    fn steady_points_cost_about_one_bit() {
        // One bit for the timestamp, none for the value, after the header
        // and first value (67 bits) and the first step (10 bits).
        let chunk = round_trip(&every_10s(1_700_000_000, [1.0; 120]));
        assert_eq!(chunk.scheme(), Ok(Scheme::Constant));
        assert_eq!(chunk.bytes().len(), (67 + 10 + 118usize).div_ceil(8));
        // One value changed: a bit a point more, and the changed one's.
        let mut values = [1.0; 120];
        values[60] = 2.0;
        let chunk = round_trip(&every_10s(1_700_000_000, values));
        assert_eq!(chunk.scheme(), Ok(Scheme::Decimal { scale: 0, order: 0 }));
        assert_eq!(chunk.bytes().len(), (29 + 10 + 118 + 119usize + 2).div_ceil(8));
    }

    #[test]
    fn timestamp_buckets_take_their_sizes() {
        // dod of each bucket's edges, and one past.
        for dod in [
            0,
            1,
            -1,
            3,
            -4,
            4,
            -5,
            63,
            -64,
            64,
            -65,
            32767,
            -32768,
            32768,
            i32::MAX as i64 + 1,
        ] {
            let pts = [(0, 0.0), (1 << 41, 0.0), ((2 << 41) + dod, 0.0)];
            round_trip(&pts);
        }
        let bits = |dod: i64| {
            let mut c = BitCounter::default();
            let mut e = TimestampEncoder::new(0);
            e.put(&mut c, 10);
            let before = c.0;
            e.put(&mut c, 20 + dod);
            c.0 - before
        };
        assert_eq!(
            [0, 1, -2, 3, -4, 10, -64, 100, 40_000, 1 << 40].map(bits),
            [1, 5, 5, 5, 5, 10, 10, 20, 37, 69]
        );
    }

    #[test]
    fn counter_resets_escape_instead_of_running_long() {
        let mut values: Vec<f64> = (0..60).map(|i| (1_000_000 + 100 * i) as f64).collect();
        values.extend((0..60).map(|i| (100 * i) as f64));
        let chunk = round_trip(&every_10s(0, values));
        assert!(chunk.bytes().len() < 60, "{} bytes", chunk.bytes().len());
    }

    #[test]
    fn invalid_inputs_are_refused() {
        assert_eq!(Chunk::encode(&[]), Err(EncodeError::Empty));
        assert_eq!(Chunk::encode(&[(1, 0.0), (1, 0.0)]), Err(EncodeError::Unsorted));
        assert_eq!(Chunk::encode(&[(2, 0.0), (1, 0.0)]), Err(EncodeError::Unsorted));
        let many: Vec<(i64, f64)> = (0..=MAX_POINTS as i64).map(|t| (t, 0.0)).collect();
        assert_eq!(Chunk::encode(&many), Err(EncodeError::TooMany));
        round_trip(&many[..MAX_POINTS]);
        assert!(Chunk::from_parts(0, 0, 0, Box::new([])).is_err());
        assert!(Chunk::from_parts(1, 0, 2, Box::new([])).is_err());
        assert!(Chunk::from_parts(0, 0, 2, Box::new([])).is_err());
        assert!(Chunk::from_parts(0, 1, 1, Box::new([])).is_err());
        let one = Chunk::from_parts(0, 0, 1, Box::new([])).unwrap();
        assert_eq!(one.decode(), Err(DecodeError::Truncated));
        // A valid chunk with a byte too many.
        let chunk = round_trip(&every_10s(0, [1.0, 2.0]));
        let mut longer = chunk.bytes().to_vec();
        longer.push(0);
        let longer = Chunk::from_parts(0, 10, 2, longer.into()).unwrap();
        assert!(matches!(longer.decode(), Err(DecodeError::Corrupt(_))));
    }
}
