//! Bit-granular writing and reading, most significant bit first, for the
//! chunk codec. A write of `n` bits takes the low `n` bits of a `u64`; a read
//! past the end is `None`, never a panic, so a decoder fed garbage stops.
//!
//! Writing goes through [`BitSink`] so that an encoder can first run against
//! a [`BitCounter`] to price an encoding, then against a [`BitWriter`] to make
//! it, with one copy of the encoding logic.

/// Where an encoder puts its bits.
pub trait BitSink {
    /// Appends the low `n` bits of `value` (`n` <= 64), high bit first.
    fn put(&mut self, value: u64, n: u32);

    fn put_bit(&mut self, bit: bool) {
        self.put(u64::from(bit), 1);
    }

    /// `n` one bits (`n` <= 64): a unary count.
    fn put_ones(&mut self, n: u32) {
        self.put(u64::MAX, n);
    }
}

/// Counts the bits an encoding would take without storing them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BitCounter(pub u64);

impl BitSink for BitCounter {
    fn put(&mut self, _value: u64, n: u32) {
        self.0 += u64::from(n);
    }
}

/// Bits packed into bytes, the first bit in the high bit of the first byte.
/// They gather in a 64-bit word that goes out whole when full: a byte at a
/// time, writing cost sealing a chunk some 70 instructions a point.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// The bits not yet in `bytes`, in the low `pending` bits (< 64).
    acc: u64,
    pending: u32,
}

impl BitWriter {
    /// A writer whose output takes up to `bytes` bytes: no reallocation
    /// (a full word goes out only once all its bits are written).
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            acc: 0,
            pending: 0,
        }
    }

    /// The bytes written, the last one padded with zero bits.
    pub fn finish(mut self) -> Vec<u8> {
        if self.pending > 0 {
            let word = self.acc << (64 - self.pending);
            let len = self.pending.div_ceil(8) as usize;
            self.bytes.extend_from_slice(&word.to_be_bytes()[..len]);
        }
        self.bytes
    }
}

impl BitSink for BitWriter {
    #[inline]
    fn put(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 64);
        if n == 0 {
            return;
        }
        let value = if n == 64 { value } else { value & ((1 << n) - 1) };
        // 1 to 64 bits free in the word.
        let free = 64 - self.pending;
        if n < free {
            self.acc = (self.acc << n) | value;
            self.pending += n;
            return;
        }
        // The word fills up with the high `free` bits of `value`.
        let left = n - free;
        let high = value >> left;
        let word = if free == 64 { high } else { (self.acc << free) | high };
        self.bytes.extend_from_slice(&word.to_be_bytes());
        self.acc = if left == 0 { 0 } else { value & ((1 << left) - 1) };
        self.pending = left;
    }
}

/// Reads bits written by a [`BitWriter`], a 64-bit word at a time: a read
/// of up to 57 bits is one unaligned big-endian load and two shifts, and a
/// unary count is one `leading_zeros`, instead of a loop over bytes or bits
/// (decoding is most of what a read of sealed chunks costs).
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    /// The next bit to read, counted from the start.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The 64 bits from the byte of `pos` on, zeros past the end.
    #[inline(always)]
    fn word(&self) -> u64 {
        let i = self.pos / 8;
        match self.bytes.get(i..i + 8) {
            Some(eight) => u64::from_be_bytes(eight.try_into().expect("8 bytes")),
            None => {
                let mut eight = [0u8; 8];
                let tail = self.bytes.get(i..).unwrap_or(&[]);
                eight[..tail.len()].copy_from_slice(tail);
                u64::from_be_bytes(eight)
            }
        }
    }

    /// The next `n` bits (`n` <= 64) as the low bits of a `u64`; None if
    /// fewer are left.
    #[inline(always)]
    pub fn get(&mut self, n: u32) -> Option<u64> {
        debug_assert!(n <= 64);
        if n == 0 {
            return Some(0);
        }
        if n > 57 {
            // More than one word can hold after a shift of up to 7 bits.
            let high = self.get(n - 32)?;
            return Some((high << 32) | self.get(32)?);
        }
        let end = self.pos + n as usize;
        if end > self.bytes.len() * 8 {
            return None;
        }
        let value = (self.word() << (self.pos % 8)) >> (64 - n);
        self.pos = end;
        Some(value)
    }

    /// Counts one bits up to a zero bit (consumed) or up to `max` ones (the
    /// zero then not read): the reader of [`BitSink::put_ones`].
    #[inline]
    pub fn get_ones(&mut self, max: u32) -> Option<u32> {
        debug_assert!(max <= 56);
        // Zeros past the end stop the count; a count past the end is then
        // refused below.
        let ones = (!(self.word() << (self.pos % 8))).leading_zeros().min(max);
        let used = ones as usize + usize::from(ones < max);
        if self.pos + used > self.bytes.len() * 8 {
            return None;
        }
        self.pos += used;
        Some(ones)
    }

    /// The next bits, the first in the high bit, without reading them: at
    /// least 57 of them (zeros past the end), for a decoder to take fields
    /// apart with shifts and then [`BitReader::skip`] them.
    #[inline(always)]
    pub fn peek(&self) -> u64 {
        self.word() << (self.pos % 8)
    }

    /// Consumes `n` bits (at most 57) a [`BitReader::peek`] showed; None if
    /// fewer are left.
    #[inline(always)]
    pub fn skip(&mut self, n: u32) -> Option<()> {
        let end = self.pos + n as usize;
        if end > self.bytes.len() * 8 {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// Bits read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bits left to read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() * 8 - self.pos
    }
}

/// The 64 bits of `bytes` from bit `pos` on, the first in the high bit,
/// zeros past the end: at least 57 of them are `bytes`' own. The whole-chunk
/// decoders read a point's fields from one or two of these with shifts and
/// check the bit count once at the end, instead of a checked read per field
/// (a checked [`BitReader`] read per field made a decoded point cost some
/// 160 instructions).
#[inline(always)]
pub fn peek_at(bytes: &[u8], pos: usize) -> u64 {
    let i = pos / 8;
    let word = match bytes.get(i..i + 8) {
        Some(eight) => u64::from_be_bytes(eight.try_into().expect("8 bytes")),
        None => tail_word(bytes, i),
    };
    word << (pos % 8)
}

/// The word of [`peek_at`] for the last 7 bytes and past them.
#[cold]
#[inline(never)]
fn tail_word(bytes: &[u8], i: usize) -> u64 {
    let mut eight = [0u8; 8];
    let tail = bytes.get(i..).unwrap_or(&[]);
    let n = tail.len().min(8);
    eight[..n].copy_from_slice(&tail[..n]);
    u64::from_be_bytes(eight)
}

/// The `n` bits (1 <= `n` <= 64) of `bytes` from bit `pos`, as the low bits
/// of a `u64`; zeros past the end, as [`peek_at`].
#[inline(always)]
pub fn read_at(bytes: &[u8], pos: usize, n: u32) -> u64 {
    debug_assert!((1..=64).contains(&n));
    if n <= 57 {
        peek_at(bytes, pos) >> (64 - n)
    } else {
        // Two reads: the high n - 32 bits (at most 32), then 32.
        let high = peek_at(bytes, pos) >> (96 - n);
        (high << 32) | (peek_at(bytes, pos + n as usize - 32) >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn writes_read_back(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..64)) {
            let mut counter = BitCounter::default();
            for &(v, n) in &fields {
                counter.put(v, n);
            }
            // Into an allocation of the counted size, which it never grows.
            let len = counter.0.div_ceil(8) as usize;
            let mut w = BitWriter::with_capacity(len);
            for &(v, n) in &fields {
                w.put(v, n);
            }
            let bytes = w.finish();
            prop_assert_eq!(bytes.len(), len);
            prop_assert_eq!(bytes.capacity(), len);
            let mut r = BitReader::new(&bytes);
            for &(v, n) in &fields {
                let want = if n == 64 { v } else { v & ((1 << n) - 1) };
                prop_assert_eq!(r.get(n), Some(want));
            }
            prop_assert!(r.remaining() < 8);
            let mut pos = 0;
            for &(v, n) in &fields {
                let want = if n == 64 { v } else { v & ((1 << n) - 1) };
                if n > 0 {
                    prop_assert_eq!(read_at(&bytes, pos, n), want);
                    pos += n as usize;
                }
            }
            prop_assert_eq!(peek_at(&bytes, pos), 0);
            prop_assert_eq!(r.get(r.remaining() as u32 + 1), None);
        }
    }

    #[test]
    fn first_bit_is_the_high_bit_of_the_first_byte() {
        let mut w = BitWriter::default();
        w.put_bit(true);
        w.put(0b01, 2);
        w.put_ones(6);
        assert_eq!(w.finish(), [0b1011_1111, 0b1000_0000]);
    }

    #[test]
    fn unary_counts_stop_at_zero_or_at_the_limit() {
        let mut w = BitWriter::default();
        w.put_ones(3);
        w.put_bit(false);
        w.put_ones(5);
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.get_ones(16), Some(3));
        assert_eq!(r.get_ones(4), Some(4));
        assert_eq!(r.get_ones(16), Some(1));
        assert_eq!(r.remaining(), 6);
        assert_eq!(r.get_ones(16), Some(0));
        assert_eq!(r.remaining(), 5);
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.get_ones(16), None);
    }
}
