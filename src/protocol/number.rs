//! Numbers on the wire: values (finite f64) and timestamps (i64), read from
//! a field and written as the shortest text that reads back to the same
//! number.
//!
//! One codec for both directions, so that a client's request and a
//! server's answer write every number alike and every reader takes back
//! what any writer wrote: [`request`](super::request) parses put fields and
//! encodes puts with it, [`response`](super::response) writes and parses
//! data lines with it. It depends on neither of them.

use memchr::memchr;
use std::io::Write;

/// A field that is not a finite decimal floating-point number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a finite decimal number")]
pub struct InvalidValue;

/// A field that is not a signed 64-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a signed 64-bit integer")]
pub struct InvalidTimestamp;

/// A finite f64 in decimal notation: `23.7`, `-1`, `1e-3`, `+0.5`.
pub fn parse_value(field: &[u8]) -> Result<f64, InvalidValue> {
    if let Some(value) = plain_decimal(field) {
        return Ok(value);
    }
    // Rust's float parser also takes `inf`, `NaN` and `infinity`; restricting
    // the bytes first keeps those out and never hands it non-ASCII.
    if !field
        .iter()
        .all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(InvalidValue);
    }
    let text = std::str::from_utf8(field).map_err(|_| InvalidValue)?;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(InvalidValue),
    }
}

/// Powers of ten that an f64 holds exactly (5^22 < 2^53 ≤ 5^23).
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// The values metrics mostly carry, `[+-]digits[.digits]` whose digits as
/// an integer are at most 2^53, read without the general parser (its text
/// check and `str` conversion cost 170 instructions a put). Clinger's fast
/// path: the integer and a power of ten up to 1e22 are exact f64s, and one
/// IEEE division rounds their quotient correctly, so the result is the
/// correctly rounded value that `str::parse` gives too. None for anything
/// else (exponents, more digits): the general parser decides.
#[inline]
fn plain_decimal(field: &[u8]) -> Option<f64> {
    let (negative, text) = split_sign(field);
    let (mut digits, mut mantissa, mut fraction_digits, mut in_fraction) = (0, 0u64, 0, false);
    for &b in text {
        match b {
            // 19 digits: below 10^19, so the integer cannot overflow a u64.
            b'0'..=b'9' if digits < 19 => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
                fraction_digits += usize::from(in_fraction);
            }
            b'.' if !in_fraction => in_fraction = true,
            _ => return None,
        }
    }
    if digits == 0 || mantissa > 1 << 53 {
        return None;
    }
    let magnitude = mantissa as f64 / *EXACT_POWERS_OF_TEN.get(fraction_digits)?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Whether a number is negative, and its text after an optional `+` or `-`.
#[inline]
fn split_sign(field: &[u8]) -> (bool, &[u8]) {
    match field {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, field),
    }
}

/// A signed 64-bit integer: `1150864247`, `-5`, `+5`. Not `1.0`, not `1e9`.
pub fn parse_timestamp(field: &[u8]) -> Result<i64, InvalidTimestamp> {
    let (negative, digits) = split_sign(field);
    // Up to 18 digits cannot overflow: read them here, eight at a time (the
    // general parser through `str` cost 133 instructions a put, a digit at
    // a time 126). Longer or empty ones, and their errors, are the standard
    // parser's.
    if !digits.is_empty() && digits.len() <= 18 {
        let (words, rest) = digits.as_chunks::<8>();
        let mut n: i64 = 0;
        for &word in words {
            // Below 10^8 each: with at most 16 digits so far, no overflow.
            n = n * 100_000_000 + eight_digits(word).ok_or(InvalidTimestamp)? as i64;
        }
        for &b in rest {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return Err(InvalidTimestamp);
            }
            n = n * 10 + i64::from(digit);
        }
        return Ok(if negative { -n } else { n });
    }
    std::str::from_utf8(field)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or(InvalidTimestamp)
}

/// The number eight ASCII digits spell, the first the most significant;
/// None if any byte is not a digit. All eight at once in one word (the
/// SWAR method of simdjson and fast_float): a 10-digit timestamp costs
/// some 30 instructions instead of 70.
#[inline]
fn eight_digits(text: [u8; 8]) -> Option<u64> {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let word = u64::from_le_bytes(text);
    // A digit is 0x30..=0x39: its high nibble is 3, and adding 6 leaves it
    // 3 (0x3A..=0x3F become 0x40..). With every high nibble 3 no byte
    // carries into the next.
    if word & HIGH_NIBBLES != ZEROS || word.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES != ZEROS {
        return None;
    }
    // Each byte its digit, the first in the lowest byte.
    let digits = word - ZEROS;
    // Each even byte now holds two digits' number, 0..=99 (the odd bytes,
    // which straddle pairs, are masked off below); no byte overflows.
    let pairs = digits * 10 + (digits >> 8);
    // Pairs 0 and 2 times 10^6 and 10^2, pairs 1 and 3 times 10^4 and 1,
    // summed in the upper half of the word.
    const PAIRS_0_2: u64 = 0x0000_00FF_0000_00FF;
    let sum = (pairs & PAIRS_0_2).wrapping_mul(100 + (1_000_000 << 32))
        + ((pairs >> 16) & PAIRS_0_2).wrapping_mul(1 + (10_000 << 32));
    Some(sum >> 32)
}

/// The shortest text that parses back to `value`, always marked as a float
/// (`2.0`, `1e-7`): exactly Rust's `{:?}`, as PROTOCOL.md specifies.
///
/// Short decimals, most metrics values, are written from their digits
/// ([`write_short_decimal`]); the others by Żmij.
///
/// Żmij (the `zmij` crate) writes the same shortest digits in the same
/// layout as `{:?}` except in three places:
///
/// - a positive exponent has a sign, `1e+300`, which is dropped here;
/// - magnitudes in [1e-5, 1e-4) are positional (`0.00001`) where `{:?}` is
///   exponential (`1e-5`): those go through `{:?}` itself;
/// - a value exactly halfway between the two nearest decimals of the
///   shortest length (1e15 + 0.25 between `1000000000000000.2` and `.3`) is
///   rounded to even, where `{:?}` rounds up: possible ties (see
///   `may_be_decimal_tie`) go through `{:?}` too, as do the non-finite
///   values a server never stores.
///
/// The tests `value_text_is_exactly_debug_format*` hold the result to the
/// bytes of `{:?}`. Why not `{:?}` always: it took 754 instructions a value
/// like `12.37` (Grisu through `core::fmt`), most of a `get` answer's cost
/// per point; Żmij takes 201 (183 for 17-digit values, where `{:?}` takes
/// 1,204; callgrind over 100,000 values). Ryū, tried first, differs from
/// `{:?}` in the same places but for the sign, and took 533: it drops
/// surplus digits one division at a time, and metrics values are short.
#[inline]
pub fn write_value(out: &mut Vec<u8>, value: f64) {
    if !write_short_decimal(out, value) {
        write_long_value(out, value);
    }
}

/// Appends ` <value> <timestamp>\n`: the fields after the key of a data
/// line and of a put. Built back to front in one buffer and copied once
/// when the value is a short decimal ([`write_short_decimal`]), the
/// common case: a `get` spent some 60 instructions a point on appending
/// its fields one by one.
#[inline]
pub fn write_fields(out: &mut Vec<u8>, value: f64, timestamp: i64) {
    let mut text = Backwards::new();
    text.byte(b'\n');
    text.integer(timestamp);
    text.byte(b' ');
    if let Some(short) = ShortDecimal::of(value) {
        text.decimal(short);
        text.byte(b' ');
        out.extend_from_slice(text.text());
    } else {
        out.push(b' ');
        write_long_value(out, value);
        out.extend_from_slice(text.text());
    }
}

/// Appends `value` if it is a short decimal (`ShortDecimal`: zero, or
/// `m / 10^k` with m below 10^15, k up to 4, at least 1e-4), and says
/// whether it was.
/// Python's `repr` writes those alike (the fewest digits, positional from
/// 1e-4 to 1e16, `.0` on integers): graphite's answers use it too.
#[inline]
pub fn write_short_decimal(out: &mut Vec<u8>, value: f64) -> bool {
    let Some(short) = ShortDecimal::of(value) else {
        return false;
    };
    let mut text = Backwards::new();
    text.decimal(short);
    out.extend_from_slice(text.text());
    true
}

/// [`write_value`] for values that are not a [`ShortDecimal`].
fn write_long_value(out: &mut Vec<u8>, value: f64) {
    if !value.is_finite() || (1e-5..1e-4).contains(&value.abs()) || may_be_decimal_tie(value) {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{value:?}");
        return;
    }
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format_finite(value).as_bytes();
    // Only magnitudes of 1e16 and more are exponential with a positive
    // exponent; looking for the sign in every value cost 59 instructions.
    let plus = if value.abs() >= 1e16 { memchr(b'+', text) } else { None };
    match plus {
        Some(plus) => {
            out.extend_from_slice(&text[..plus]);
            out.extend_from_slice(&text[plus + 1..]);
        }
        None => out.extend_from_slice(text),
    }
}

/// Fractional digits [`ShortDecimal::of`] tries: metrics are mostly
/// integers (counters, bytes) and decimals of one or two digits (percent,
/// load, temperature); a value with more digits costs a failed try per
/// digit count (some 8 instructions each) before Żmij writes it.
const SHORT_FRACTION_DIGITS: usize = 4;

/// A value that is a short decimal, `±m / 10^k`: zero, or at least 1e-4
/// (below, `{:?}` is exponential) with m under 10^15 and k at most
/// [`SHORT_FRACTION_DIGITS`]. Written without Żmij in some 40
/// instructions, where Żmij and the guards around it took some 190, most
/// of a `get`'s cost per point.
///
/// Why its text is `{:?}`'s: the smallest k for which `m / 10^k` (m the
/// nearest integer to `value × 10^k`) is `value` again gives the fewest
/// digits that read back to it, and `{:?}` writes the fewest. The test is
/// exact: m and 10^k are exact f64s, and one IEEE division of them rounds
/// as reading the decimal does (Clinger's fast path, as in
/// [`plain_decimal`]). No other decimal of k fractional digits reads back
/// to `value`: under 10^15 a float's spacing is under 0.22 units of the
/// k-th digit, so only one of them lies within half of it; for the same
/// reason `value × 10^k`, off by at most that much, rounds to m.
#[derive(Debug, Clone, Copy)]
struct ShortDecimal {
    negative: bool,
    m: u64,
    fraction_digits: usize,
}

impl ShortDecimal {
    #[inline]
    fn of(value: f64) -> Option<Self> {
        let magnitude = value.abs();
        let negative = value.is_sign_negative();
        if magnitude == 0.0 {
            return Some(Self {
                negative,
                m: 0,
                fraction_digits: 0,
            });
        }
        if !(1e-4..1e15).contains(&magnitude) {
            return None;
        }
        // m for k fractional digits: the nearest integer to `value × 10^k`
        // (the cast truncates, and saturates past 2^64; `f64::round` is a
        // call into libm, 25 instructions).
        let nearest = |k: usize| (magnitude * EXACT_POWERS_OF_TEN[k] + 0.5) as u64;
        (0..=SHORT_FRACTION_DIGITS).find_map(|k| {
            let m = nearest(k);
            // Below 10^15, m is an exact f64.
            (m < 1_000_000_000_000_000 && m as f64 / EXACT_POWERS_OF_TEN[k] == magnitude).then_some(Self {
                negative,
                m,
                fraction_digits: k,
            })
        })
    }
}

/// Text written from its end into a buffer on the stack, then copied out
/// at once: numbers come out least significant digit first.
struct Backwards {
    buf: [u8; Backwards::CAPACITY],
    start: usize,
}

impl Backwards {
    /// The longest text written here: ` <value> <timestamp>\n` with a short
    /// decimal (a sign, 15 digits, a point and 4 zeros; an i64's 20
    /// characters).
    const CAPACITY: usize = 48;

    #[inline]
    fn new() -> Self {
        Self {
            buf: [0; Self::CAPACITY],
            start: Self::CAPACITY,
        }
    }

    #[inline]
    fn text(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        self.start -= 1;
        self.buf[self.start] = b;
    }

    /// `n`'s digits, two at a time.
    #[inline]
    fn digits(&mut self, mut n: u64) {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let mut pair = |pair: usize| {
            self.start -= 2;
            self.buf[self.start..self.start + 2].copy_from_slice(&PAIRS[pair * 2..pair * 2 + 2]);
        };
        while n >= 100 {
            pair((n % 100) as usize);
            n /= 100;
        }
        if n >= 10 {
            pair(n as usize);
        } else {
            self.byte(b'0' + n as u8);
        }
    }

    #[inline]
    fn integer(&mut self, n: i64) {
        self.digits(n.unsigned_abs());
        if n < 0 {
            self.byte(b'-');
        }
    }

    /// As `{:?}` writes it (see [`ShortDecimal`]). Always inlined: with
    /// two callers it was not, and a call cost a `get` 13 instructions a
    /// point.
    #[inline(always)]
    fn decimal(&mut self, short: ShortDecimal) {
        let ShortDecimal {
            negative,
            mut m,
            fraction_digits,
        } = short;
        if fraction_digits == 0 {
            // An integer: `{:?}` marks it as a float.
            self.byte(b'0');
        } else {
            // Including the zeros a value under 1 has after the point.
            for _ in 0..fraction_digits {
                self.byte(b'0' + (m % 10) as u8);
                m /= 10;
            }
        }
        self.byte(b'.');
        self.digits(m);
        if negative {
            self.byte(b'-');
        }
    }
}

/// Whether `value` could lie exactly halfway between two decimals of its
/// shortest length (a tie, which Żmij and `{:?}` round differently).
///
/// A tie is `(10·D + 5) × 10^q` for the shortest digits D, so its exact
/// decimal expansion ends in 5 and has one digit more than D. Both
/// neighbours must also lie within the float's rounding interval, which
/// takes D of 16 digits or more; so the exact value has 17 or 18 significant
/// digits. Writing `value = m × 2^e` with m odd: for e ≥ 0 it is an integer,
/// and its significant digits can end in 5 only once all its factors 2 went
/// into trailing zeros, leaving `m / 5^e`, at most the 16 digits of m (under
/// 2^53): it never ties. For e < 0 its exact expansion is
/// `m × 5^-e / 10^-e`, whose significant digits are those of `m × 5^-e`.
/// So a tie needs `10^16 ≤ m × 5^-e < 10^18`, hence `-e ≤ 25`: common values
/// (`23.7`, `0.1 + 0.2`) have e far below -25 and leave at the first test.
#[inline]
fn may_be_decimal_tie(value: f64) -> bool {
    let bits = value.to_bits();
    let biased_exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exponent) = match biased_exponent {
        0 => (fraction, -1074),
        _ => (fraction | 1 << 52, biased_exponent - 1075),
    };
    if mantissa == 0 {
        return false;
    }
    let zeros = mantissa.trailing_zeros();
    let exponent = exponent + zeros as i32;
    if !(-25..0).contains(&exponent) {
        return false;
    }
    let digits = u128::from(mantissa >> zeros) * POWERS_OF_FIVE[exponent.unsigned_abs() as usize];
    (10u128.pow(16)..10u128.pow(18)).contains(&digits)
}

/// 5^k for the k of [`may_be_decimal_tie`], 1..=25: looked up, where
/// `5u128.pow(k)` cost some 60 instructions a value with a short binary
/// fraction (a quarter, a half), a third of what Żmij takes to write it.
const POWERS_OF_FIVE: [u128; 26] = {
    let mut powers = [1u128; 26];
    let mut k = 1;
    while k < powers.len() {
        powers[k] = powers[k - 1] * 5;
        k += 1;
    }
    powers
};

/// A timestamp as a plain integer (`itoa`: the same digits as `{}` without
/// the formatting machinery).
#[inline]
pub fn write_timestamp(out: &mut Vec<u8>, timestamp: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::{model_timestamp, model_value, number_text};
    use crate::test_support::XorShift;
    use proptest::prelude::*;

    #[test]
    fn values_are_written_as_floats_in_shortest_form() {
        let cases: &[(f64, &str)] = &[
            (2.0, "2.0"),
            (0.5, "0.5"),
            (4200000.0, "4200000.0"),
            (1e-7, "1e-7"),
            (1e300, "1e300"),
            (23.7, "23.7"),
            (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for &(v, text) in cases {
            let mut out = Vec::new();
            write_value(&mut out, v);
            assert_eq!(std::str::from_utf8(&out).unwrap(), text);
        }
    }

    /// Checks `write_value` against `{:?}` byte for byte.
    fn same_as_debug(v: f64, out: &mut Vec<u8>, want: &mut String) {
        use std::fmt::Write as _;
        out.clear();
        want.clear();
        write_value(out, v);
        let _ = write!(want, "{v:?}");
        assert!(
            out == want.as_bytes(),
            "{v:e} (bits {:#x}): {:?} instead of {want}",
            v.to_bits(),
            String::from_utf8_lossy(out)
        );
    }

    /// Finite values of every shape: each power of ten and the floats next
    /// to it (where notation and digit counts change, including 1e-5, 1e-4
    /// and 1e16, where `write_value` hands over between Żmij and `{:?}`),
    /// subnormals and the extremes, integers, short decimals as people
    /// type them (`23.7`, whose shortest digits are few), and `count`
    /// random bit patterns; each with both signs.
    fn check_values_like_debug(count: u64, seed: u64) {
        let (mut out, mut want) = (Vec::new(), String::new());
        let mut check = |v: f64| {
            same_as_debug(v, &mut out, &mut want);
            same_as_debug(-v, &mut out, &mut want);
        };
        for e in -325..=309 {
            let p: f64 = format!("1e{e}").parse().unwrap();
            let mut below = p;
            let mut above = p;
            for _ in 0..8 {
                check(below);
                check(above);
                below = below.next_down();
                above = above.next_up();
            }
        }
        // The smallest and largest subnormals, normals and their neighbours.
        for v in [
            0.0,
            5e-324,
            f64::from_bits((1 << 52) - 1),
            f64::MIN_POSITIVE,
            f64::EPSILON,
            f64::MAX,
        ] {
            check(v);
            check(v.next_up());
            check(v.next_down());
        }
        let mut rng = XorShift::seeded(seed);
        // m × 2^e for odd m and small e, around where ties can happen
        // (see `may_be_decimal_tie`) and just outside it.
        for _ in 0..count / 4 {
            let m = (rng.next() >> rng.below(53)) | 1;
            let e = rng.below(90) as i32 - 60;
            check(m as f64 * 2f64.powi(e));
        }
        // Decimals of up to 6 fractional digits and 17 digits in all (where
        // `ShortDecimal` hands over to Żmij, by digits and by
        // magnitude), and the floats next to them.
        for i in 0..count / 4 {
            let digits = rng.below(10u64.pow(1 + (i % 17) as u32));
            let v = digits as f64 / 10f64.powi((i % 7) as i32);
            check(v);
            check(v.next_up());
            check(v.next_down());
        }
        for i in 0..count {
            let bits = rng.next();
            let v = f64::from_bits(bits);
            if v.is_finite() {
                check(v);
            }
            // A subnormal, an integer, and a short decimal typed by a person.
            check(f64::from_bits(bits & ((1 << 52) - 1)));
            check((bits >> (i % 64)) as f64);
            let digits = rng.below(10u64.pow(1 + (i % 9) as u32));
            let exponent = rng.below(40) as i32 - 20;
            check(format!("{digits}e{exponent}").parse().unwrap());
        }
    }

    /// Why `write_value` does not hand every value to Żmij as it is: where
    /// the two differ. (If Żmij ever changes here, the guards may be
    /// revisited.)
    #[test]
    fn zmij_alone_differs_from_debug_format_in_three_places() {
        let zmij = |v: f64| zmij::Buffer::new().format_finite(v).to_owned();
        assert_eq!((zmij(1e300), format!("{:?}", 1e300)), ("1e+300".into(), "1e300".into()));
        assert_eq!((zmij(1e-5), format!("{:?}", 1e-5)), ("0.00001".into(), "1e-5".into()));
        let tie = 1e15 + 0.25;
        assert!(may_be_decimal_tie(tie));
        assert_eq!(
            (zmij(tie), format!("{tie:?}")),
            ("1000000000000000.2".into(), "1000000000000000.3".into())
        );
        for common in [23.7, 0.1 + 0.2, 1.5, 4200000.0, 1e300, 1e-7] {
            assert!(!may_be_decimal_tie(common), "{common}");
        }
    }

    #[test]
    fn value_text_is_exactly_debug_format() {
        check_values_like_debug(200_000, 1);
    }

    /// The same over far more values: `cargo test --release --lib
    /// value_text_is_exactly_debug_format_at_length -- --ignored`
    /// (100 million random bit patterns and as many integers, subnormals and
    /// short decimals; a few minutes).
    #[test]
    #[ignore = "minutes; run in release when write_value or its crates change"]
    fn value_text_is_exactly_debug_format_at_length() {
        check_values_like_debug(100_000_000, 2);
    }

    #[test]
    fn timestamps_are_written_as_plain_integers() {
        for t in [0, 1, -1, 9, 10, -10, 1150864247, i64::MAX, i64::MIN, i64::MIN + 1] {
            let mut out = Vec::new();
            write_timestamp(&mut out, t);
            assert_eq!(out, t.to_string().as_bytes());
        }
    }

    /// The fields of a data line, written back to front in one buffer, are
    /// ` {value:?} {timestamp}\n` for every number of digits and sign of
    /// the timestamp, and values on either side of the short decimals.
    #[test]
    fn fields_are_debug_value_and_plain_timestamp() {
        let mut timestamps = vec![0, i64::MAX, i64::MIN, i64::MIN + 1];
        for digits in 0..19 {
            let p = 10i64.pow(digits);
            timestamps.extend([p - 1, p, p + 1, -p, 1 - p, 2 * p + 3]);
        }
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            23.7,
            12.25,
            -0.0001,
            1e-4,
            1e-4f64.next_down(),
            0.00012,
            0.0012,
            0.1 + 0.2,
            999_999_999_999_999.0,
            1e15,
            1e15 + 0.5,
            123456789012.3456,
            1e16,
            1e-7,
            5e-324,
            f64::MAX,
        ];
        let mut rng = XorShift::seeded(3);
        let random = (0..2000).map(|i| rng.below(10u64.pow(1 + i % 16)) as f64 / 10f64.powi((i % 6) as i32));
        let mut out = Vec::new();
        for value in values.into_iter().chain(random) {
            for &timestamp in &timestamps {
                out.clear();
                write_fields(&mut out, value, timestamp);
                assert_eq!(String::from_utf8_lossy(&out), format!(" {value:?} {timestamp}\n"));
            }
        }
    }

    proptest! {
        /// Values read by the fast path and by `str::parse` agree bit for
        /// bit, and so do their refusals.
        #[test]
        fn values_match_the_standard_parser(text in number_text(b"0123456789.eE+-x", 30)) {
            prop_assert_eq!(parse_value(&text).map(f64::to_bits), model_value(&text).map(f64::to_bits));
        }

        /// Decimals as people type them, up to 24 digits and any dot.
        #[test]
        fn decimals_match_the_standard_parser(sign in "[+-]?", digits in "[0-9]{1,24}", dot in any::<prop::sample::Index>()) {
            let dot = dot.index(digits.len() + 1);
            let text = format!("{sign}{}.{}", &digits[..dot], &digits[dot..]);
            prop_assert_eq!(parse_value(text.as_bytes()).map(f64::to_bits), model_value(text.as_bytes()).map(f64::to_bits));
            let whole = format!("{sign}{digits}");
            prop_assert_eq!(parse_value(whole.as_bytes()).map(f64::to_bits), model_value(whole.as_bytes()).map(f64::to_bits));
        }

        #[test]
        fn timestamps_match_the_standard_parser(text in number_text(b"0123456789+-x", 22)) {
            prop_assert_eq!(parse_timestamp(&text), model_timestamp(&text));
        }
    }

    /// Every byte in every place of timestamps read eight digits at a
    /// time: the bytes next to the digits (`/`, `:`) and those whose low
    /// nibble is a digit's are refused as the standard parser refuses them.
    #[test]
    fn every_byte_in_every_place_of_a_timestamp() {
        for text in ["1150864247", "12345678", "999999999999999999", "-100000000"] {
            for place in 0..text.len() {
                for byte in 0..=255u8 {
                    let mut bytes = text.as_bytes().to_vec();
                    bytes[place] = byte;
                    assert_eq!(
                        parse_timestamp(&bytes),
                        model_timestamp(&bytes),
                        "{:?}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
        }
    }

    #[test]
    fn number_edges_match_the_standard_parsers() {
        for text in [
            "0",
            "-0",
            "+0",
            "0.",
            ".5",
            "-.5",
            "+.5",
            ".",
            "-",
            "+",
            "",
            "1..2",
            "--1",
            "+-1",
            "9007199254740992",
            "9007199254740993",
            "9007199254740993.0",
            "0.9007199254740993",
            "1234567890123456789",
            "12345678901234567890",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
            "179769313486231570",
        ] {
            let bits = |r: Result<f64, InvalidValue>| r.map(f64::to_bits);
            assert_eq!(
                bits(parse_value(text.as_bytes())),
                bits(model_value(text.as_bytes())),
                "{text}"
            );
        }
        for t in [
            0,
            1,
            -1,
            999_999_999_999_999_999,
            -999_999_999_999_999_999,
            i64::MAX,
            i64::MIN,
        ] {
            for text in [t.to_string(), format!("+{t}"), format!("00{t}")] {
                assert_eq!(
                    parse_timestamp(text.as_bytes()),
                    model_timestamp(text.as_bytes()),
                    "{text}"
                );
            }
        }
        for text in [
            "9223372036854775808",
            "-9223372036854775809",
            "",
            "+",
            "-",
            "1 ",
            "1.0",
            "+-1",
            "-+1",
        ] {
            assert_eq!(parse_timestamp(text.as_bytes()), Err(InvalidTimestamp), "{text}");
        }
    }
}
