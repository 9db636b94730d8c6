//! Test helpers of the protocol module: feeding the framer and the answer
//! scanner in pieces the way a connection and the client do, and proptest
//! strategies for what travels on the wire.

use super::number::{InvalidTimestamp, InvalidValue};
use super::{is_valid_key, Framed, LineFramer, ResponseScanner};
use proptest::prelude::*;
use proptest::sample::Index;

/// Calls `step` on a growing buffer fed with `input` cut at `cuts` (sorted
/// positions), the way both ends read: after each piece arrives, `step` gets
/// everything kept so far, says how many bytes it used up and whether it
/// produced an item, and is called again until it produces none.
fn feed<T>(input: &[u8], cuts: &[usize], mut step: impl FnMut(&[u8]) -> (Option<T>, usize)) -> Vec<T> {
    let mut pending = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([input.len()]) {
        pending.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            let (item, used) = step(&pending);
            pending.drain(..used);
            match item {
                Some(item) => out.push(item),
                None => break,
            }
        }
    }
    out
}

/// Feeds `input` to a framer in pieces cut at `cuts`, as a connection does:
/// unconsumed bytes are kept and offered again with the next piece.
pub(crate) fn frame_in_pieces(max: usize, input: &[u8], cuts: &[usize]) -> Vec<Framed<'static>> {
    let mut framer = LineFramer::new(max);
    feed(input, cuts, |pending| {
        let (framed, used) = framer.next(pending);
        let owned = match framed {
            // Leaked so that results compare as `Framed`; tests are short.
            Framed::Line(l) => Some(Framed::Line(Box::leak(l.to_vec().into_boxed_slice()))),
            Framed::TooLong => Some(Framed::TooLong),
            Framed::Incomplete => None,
        };
        (owned, used)
    })
}

/// The lengths of the whole answers that a scanner finds in `stream` fed in
/// pieces cut at `cuts`, as the client reads: it keeps the bytes after the
/// last whole answer and appends what arrives next.
pub(crate) fn answers_in_pieces(stream: &[u8], cuts: &[usize]) -> Vec<usize> {
    let mut scanner = ResponseScanner::new();
    feed(stream, cuts, |pending| match scanner.check(pending) {
        Some(len) => (Some(len), len),
        None => (None, 0),
    })
}

/// Cut positions for an input of `len` bytes, sorted, from proptest indices.
pub(crate) fn positions(cuts: &[Index], len: usize) -> Vec<usize> {
    let mut positions: Vec<usize> = cuts.iter().map(|i| i.index(len + 1)).collect();
    positions.sort_unstable();
    positions
}

/// Up to 16 cuts (turned into positions by [`positions`]).
pub(crate) fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..16)
}

/// Up to `max_len` bytes where `\n` comes about once in `1 + other_weight`
/// bytes; the rest are mostly text (blanks, `\r`, letters) and sometimes any
/// byte at all.
pub(crate) fn stream(other_weight: u32, max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    let other = prop_oneof![
        4 => Just(b'x'),
        1 => Just(b' '),
        1 => Just(b'\r'),
        2 => any::<u8>(),
    ];
    prop::collection::vec(prop_oneof![1 => Just(b'\n'), other_weight => other], 0..max_len)
}

/// Keys that [`is_valid_key`] accepts, except `*`: ASCII names, and any
/// character a key may hold, with a bias to the odd ones (multi-byte UTF-8,
/// zero-width and format characters, combining marks, the last code point).
pub(crate) fn key() -> impl Strategy<Value = String> {
    let odd = prop::sample::select(vec![
        'ж',
        '😀',
        '\u{200b}',
        '\u{feff}',
        '\u{301}',
        '\u{10ffff}',
        '*',
        '.',
    ]);
    let char = prop_oneof![4 => prop::char::range('!', '~'), 2 => any::<char>(), 1 => odd];
    prop::collection::vec(char, 1..24)
        .prop_map(|chars| {
            // Unicode whitespace and controls are dropped here; that they
            // are refused is the parser's unit tests' business.
            chars
                .into_iter()
                .filter(|c| is_valid_key(c.encode_utf8(&mut [0; 4])))
                .collect::<String>()
        })
        .prop_filter("a key for put", |k| !k.is_empty() && k != "*")
}

/// Finite f64s: any bit pattern (every exponent, subnormals, both zeros),
/// proptest's mix of classes, and the edges.
pub(crate) fn value() -> impl Strategy<Value = f64> {
    use prop::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    let edges = vec![
        0.0,
        -0.0,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        1e16,
        1e-7,
        0.1,
    ];
    prop_oneof![
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |v| v.is_finite()),
        POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
        prop::sample::select(edges),
    ]
}

/// Any i64, with its edges more often than chance would bring them.
pub(crate) fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![4 => any::<i64>(), 1 => prop::sample::select(vec![i64::MIN, i64::MAX, 0, -1])]
}

/// The value parser as the standard library has it, for the fast path's
/// tests: `str::parse` on the bytes of a decimal number, finite only.
pub(crate) fn model_value(field: &[u8]) -> Result<f64, InvalidValue> {
    let allowed = |b: u8| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-');
    match std::str::from_utf8(field).map(str::parse::<f64>) {
        Ok(Ok(v)) if v.is_finite() && field.iter().all(|&b| allowed(b)) => Ok(v),
        _ => Err(InvalidValue),
    }
}

/// The timestamp parser as the standard library has it.
pub(crate) fn model_timestamp(field: &[u8]) -> Result<i64, InvalidTimestamp> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(InvalidTimestamp)
}

/// Up to `max` bytes drawn mostly from `alphabet`.
pub(crate) fn number_text(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![20 => prop::sample::select(alphabet), 1 => any::<u8>()];
    prop::collection::vec(byte, 0..max)
}
