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
