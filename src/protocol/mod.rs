//! The wire protocol of `docs/PROTOCOL.md`, with no I/O.
//!
//! Shared by the server, the blocking [`Client`](crate::client::Client) and the
//! load tools, so that all of them agree on every byte:
//!
//! - [`frame`]: cuts a byte stream into lines, bounded by a maximum line length.
//! - [`number`]: values and timestamps, parsed from a field and written as
//!   their shortest round-trip text; used by both of the next two.
//! - [`request`]: one line to a [`Request`] that borrows its key, or a precise
//!   [`RequestError`]; and encoding requests for clients. A `range` is a
//!   [`Range`], its aggregate an [`Agg`].
//! - [`response`]: encoding answers (server side), and checking then parsing
//!   answers incrementally (client side).
//! - [`stats`]: encoding the `stats` answer from named figures.

pub mod frame;
pub mod number;
pub mod request;
pub mod response;
pub mod stats;
#[cfg(test)]
pub(crate) mod testing;

pub use frame::{Framed, LineFramer};
pub use request::{parse_line, Agg, Buckets, Query, Range, Request, RequestError};
pub use response::{Point, Response, ResponseError, ResponseScanner};

/// Whether `b` may appear inside a field (a key, value or timestamp).
///
/// Everything up to and including the space (controls, tab, CR, LF) and DEL
/// are excluded: PROTOCOL.md forbids ASCII whitespace and control characters
/// inside a key, and the other fields are ASCII numbers anyway. Bytes of
/// multi-byte UTF-8 sequences are all >= 0x80 and pass; UTF-8 validity is
/// checked separately.
#[inline]
pub fn is_field_byte(b: u8) -> bool {
    b > b' ' && b != 0x7f
}

/// How many bytes at the start of `bytes` may be in a field
/// ([`is_field_byte`]): where a field ends. Eight bytes at a time, by the
/// bit tricks of "Bit Twiddling Hacks" (Anderson, "determine if a word has
/// a byte less than n"): a byte at a time, the fields of a put cost some
/// 300 instructions, a sixth of it.
#[inline]
pub fn field_len(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut len = 0;
    while let Some(word) = bytes.get(len..).and_then(|rest| rest.first_chunk::<8>()) {
        let word = u64::from_le_bytes(*word);
        // The high bit of each byte below 0x21 (controls, the space), and
        // of each DEL (0x7f, which XOR makes 0). A test may flag bytes
        // above its first match too (a borrow runs upward from it), never
        // below: the lowest flag of either is the first byte that stops.
        let below_space = word.wrapping_sub(ONES * 0x21) & !word & HIGH_BITS;
        let del = word ^ (ONES * 0x7f);
        let del = del.wrapping_sub(ONES) & !del & HIGH_BITS;
        let stops = below_space | del;
        if stops != 0 {
            return len + (stops.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    let rest = &bytes[len..];
    len + rest.iter().position(|&b| !is_field_byte(b)).unwrap_or(rest.len())
}

/// Whether `key` is a key the server stores: one or more characters, none of
/// them whitespace or a control character.
///
/// PROTOCOL.md forbids ASCII whitespace and controls; Unicode whitespace
/// (U+00A0, U+2028, …) and C1 controls are refused as well, because the
/// assignment's Python clients split answer lines with `str.split()`, which
/// splits on those too: a key holding one would break every `get *` they
/// make ("compatibility wins"). `*` passes here because `get *` is valid; the
/// caller refuses it for `put`.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(is_key_char)
}

#[inline]
fn is_key_char(c: char) -> bool {
    !c.is_whitespace() && !c.is_control()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn byte_at_a_time(bytes: &[u8]) -> usize {
        bytes.iter().position(|&b| !is_field_byte(b)).unwrap_or(bytes.len())
    }

    /// Every byte value in every place of lines up to 24 bytes long, after
    /// field bytes of both halves of the byte range.
    #[test]
    fn a_field_ends_at_its_first_stopping_byte() {
        for len in 0..24 {
            for filler in [b'a', 0x80, 0xff, b'~', b'!'] {
                for place in 0..len {
                    for byte in 0..=255u8 {
                        let mut bytes = vec![filler; len];
                        bytes[place] = byte;
                        assert_eq!(field_len(&bytes), byte_at_a_time(&bytes), "{bytes:?}");
                    }
                }
            }
        }
    }

    proptest! {
        /// Any bytes, stops of both kinds in any number.
        #[test]
        fn field_len_is_the_first_stop(bytes in proptest::collection::vec(
            prop_oneof![4 => any::<u8>(), 1 => Just(b' '), 1 => Just(0x7f), 1 => Just(0x20 + 1)], 0..40)) {
            prop_assert_eq!(field_len(&bytes), byte_at_a_time(&bytes));
        }
    }
}
