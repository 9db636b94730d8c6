//! Responses: encoding them (server) and checking then parsing them (clients).
//!
//! Every response is a status line, optional data lines and an empty line.
//! Status and data lines are never empty, so a response ends at the first
//! `\n\n` after its start: [`ResponseScanner::check`] finds that end
//! incrementally, and [`parse_response`] interprets the bytes up to it.

use super::request::{parse_timestamp, parse_value};
use memchr::{memchr, memmem};
use std::io::Write;

/// `put` stored, or `get` of a key without data.
pub const OK_EMPTY: &[u8] = b"ok\n\n";
/// The one error answer the protocol has.
pub const WRONG_COMMAND: &[u8] = b"error\nwrong command\n\n";

/// An error answer with a reason of its own (PROTOCOL.md's one error answer
/// is [`WRONG_COMMAND`], for invalid requests; a valid put the server cannot
/// store says why). `reason` is one line.
pub fn write_error(out: &mut Vec<u8>, reason: &str) {
    debug_assert!(!reason.is_empty() && !reason.contains('\n'));
    out.extend_from_slice(b"error\n");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Starts an `ok` answer that carries data lines.
#[inline]
pub fn begin_ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"ok\n");
}

/// Appends one data line `<key> <value> <timestamp>\n`.
#[inline]
pub fn write_point(out: &mut Vec<u8>, key: &str, value: f64, timestamp: i64) {
    out.extend_from_slice(key.as_bytes());
    out.push(b' ');
    write_value(out, value);
    out.push(b' ');
    write_timestamp(out, timestamp);
    out.push(b'\n');
}

/// Ends an answer started with [`begin_ok`].
#[inline]
pub fn end(out: &mut Vec<u8>) {
    out.push(b'\n');
}

/// The shortest text that parses back to `value`, always marked as a float
/// (`2.0`, `1e-7`): exactly Rust's `{:?}`, as PROTOCOL.md specifies.
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
///   [`may_be_decimal_tie`]) go through `{:?}` too, as do the non-finite
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
    let digits = u128::from(mantissa >> zeros) * 5u128.pow(exponent.unsigned_abs());
    (10u128.pow(16)..10u128.pow(18)).contains(&digits)
}

/// A timestamp as a plain integer (`itoa`: the same digits as `{}` without
/// the formatting machinery).
#[inline]
pub fn write_timestamp(out: &mut Vec<u8>, timestamp: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
}

/// Why bytes from a server are not a valid response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The status line is neither `ok` nor `error`.
    #[error("unknown status line")]
    UnknownStatus,
    /// Text that is not valid UTF-8.
    #[error("response is not valid UTF-8")]
    NotUtf8,
    /// A data line without exactly three fields (key, value, timestamp).
    #[error("data line does not have three fields")]
    PointFields,
    /// A data line whose value is not a finite float.
    #[error("data line has an invalid value")]
    PointValue,
    /// A data line whose timestamp is not an integer.
    #[error("data line has an invalid timestamp")]
    PointTimestamp,
    /// Data lines in an answer that has none (the answer to a `put`).
    #[error("data lines where none belong")]
    UnexpectedData,
    /// Bytes after the last answer that was asked for.
    #[error("bytes after the last expected answer")]
    Unsolicited,
    /// A line of a `stats` answer without exactly two fields (name, value).
    #[error("stats line does not have two fields")]
    StatFields,
}

/// One parsed response. Data lines are parsed lazily by [`Response::points`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// `ok`, with the data lines (each ending in `\n`; empty for `ok\n\n`).
    Ok { body: &'a [u8] },
    /// `error`, with the message the server gave (`wrong command`).
    Error { message: &'a str },
}

impl<'a> Response<'a> {
    /// The `<name> <value>` lines of an `ok` answer to `stats`.
    pub fn stats(&self) -> impl Iterator<Item = Result<(&'a str, &'a str), ResponseError>> + 'a {
        let body = match *self {
            Response::Ok { body } => body,
            Response::Error { .. } => &[],
        };
        body.split(|&b| b == b'\n').filter(|line| !line.is_empty()).map(|line| {
            let line = std::str::from_utf8(line).map_err(|_| ResponseError::NotUtf8)?;
            let mut fields = line.split(' ').filter(|f| !f.is_empty());
            match (fields.next(), fields.next(), fields.next()) {
                (Some(name), Some(value), None) => Ok((name, value)),
                _ => Err(ResponseError::StatFields),
            }
        })
    }

    /// The data lines of an `ok` answer (none for an `error`).
    pub fn points(&self) -> Points<'a> {
        match *self {
            Response::Ok { body } => Points { rest: body },
            Response::Error { .. } => Points { rest: &[] },
        }
    }
}

/// One data line of a `get` answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point<'a> {
    pub key: &'a str,
    pub value: f64,
    pub timestamp: i64,
}

/// Iterator over the data lines of an `ok` answer.
#[derive(Debug, Clone)]
pub struct Points<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Points<'a> {
    type Item = Result<Point<'a>, ResponseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        // parse_response hands over bodies whose lines all end in `\n`.
        let end = memchr(b'\n', self.rest).unwrap_or(self.rest.len());
        let line = &self.rest[..end];
        self.rest = self.rest.get(end + 1..).unwrap_or(&[]);
        Some(parse_point(line))
    }
}

fn parse_point(line: &[u8]) -> Result<Point<'_>, ResponseError> {
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let (Some(key), Some(value), Some(timestamp), None) = (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(ResponseError::PointFields);
    };
    Ok(Point {
        key: std::str::from_utf8(key).map_err(|_| ResponseError::NotUtf8)?,
        value: parse_value(value).map_err(|_| ResponseError::PointValue)?,
        timestamp: parse_timestamp(timestamp).map_err(|_| ResponseError::PointTimestamp)?,
    })
}

/// Finds where responses end in a growing buffer, without searching any byte
/// twice.
#[derive(Debug, Clone, Default)]
pub struct ResponseScanner {
    scanned: usize,
}

impl ResponseScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The length of the first complete response at the front of `buf`, or
    /// `None` if more bytes are needed. After `None`, call again with the same
    /// bytes first and more appended; after `Some(n)`, with `buf[n..]` first.
    pub fn check(&mut self, buf: &[u8]) -> Option<usize> {
        // Step back one byte: the first `\n` of the `\n\n` may have ended the
        // previous piece.
        let from = self.scanned.saturating_sub(1).min(buf.len());
        match memmem::find(&buf[from..], b"\n\n") {
            Some(i) => {
                self.scanned = 0;
                Some(from + i + 2)
            }
            None => {
                self.scanned = buf.len();
                None
            }
        }
    }
}

/// Parses one whole response, as delimited by [`ResponseScanner::check`].
pub fn parse_response(resp: &[u8]) -> Result<Response<'_>, ResponseError> {
    // Drop the empty line that ends the response; what is left is lines that
    // each end in `\n`.
    let lines = resp.strip_suffix(b"\n").unwrap_or(resp);
    let status_end = memchr(b'\n', lines).ok_or(ResponseError::UnknownStatus)?;
    let body = &lines[status_end + 1..];
    match &lines[..status_end] {
        b"ok" => Ok(Response::Ok { body }),
        b"error" => {
            let message = body.strip_suffix(b"\n").unwrap_or(body);
            Ok(Response::Error {
                message: std::str::from_utf8(message).map_err(|_| ResponseError::NotUtf8)?,
            })
        }
        _ => Err(ResponseError::UnknownStatus),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::{answers_in_pieces, cuts, key, positions, stream, timestamp, value};
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

    #[test]
    fn encodes_the_assignment_example() {
        let mut out = Vec::new();
        begin_ok(&mut out);
        write_point(&mut out, "palm.cpu", 2.0, 1150864247);
        write_point(&mut out, "palm.cpu", 0.5, 1150864248);
        end(&mut out);
        assert_eq!(out, b"ok\npalm.cpu 2.0 1150864247\npalm.cpu 0.5 1150864248\n\n");
    }

    #[test]
    fn scanner_finds_ends_at_every_split() {
        let stream: &[u8] = b"ok\n\nerror\nwrong command\n\nok\na 1.0 1\nb 2.0 -2\n\n";
        for cut in 0..=stream.len() {
            assert_eq!(answers_in_pieces(stream, &[cut]), [4, 21, 21], "cut at {cut}");
        }
    }

    #[test]
    fn parses_ok_error_and_points() {
        assert_eq!(parse_response(b"ok\n\n"), Ok(Response::Ok { body: b"" }));
        assert_eq!(
            parse_response(WRONG_COMMAND),
            Ok(Response::Error {
                message: "wrong command"
            })
        );
        assert_eq!(parse_response(b"error\n\n"), Ok(Response::Error { message: "" }));
        let r = parse_response(b"ok\npalm.cpu 2.0 1150864247\neardrum.cpu 3 -1\n\n").unwrap();
        let points: Vec<_> = r.points().collect();
        assert_eq!(
            points,
            vec![
                Ok(Point {
                    key: "palm.cpu",
                    value: 2.0,
                    timestamp: 1150864247
                }),
                Ok(Point {
                    key: "eardrum.cpu",
                    value: 3.0,
                    timestamp: -1
                }),
            ]
        );
    }

    #[test]
    fn malformed_responses_have_precise_causes() {
        assert_eq!(parse_response(b"OK\n\n"), Err(ResponseError::UnknownStatus));
        assert_eq!(parse_response(b"\n\n"), Err(ResponseError::UnknownStatus));
        assert_eq!(parse_response(b"error\n\xff\n\n"), Err(ResponseError::NotUtf8));
        let bad = |resp: &'static [u8]| parse_response(resp).unwrap().points().next().unwrap();
        assert_eq!(bad(b"ok\na 1.0\n\n"), Err(ResponseError::PointFields));
        assert_eq!(bad(b"ok\na 1.0 1 x\n\n"), Err(ResponseError::PointFields));
        assert_eq!(bad(b"ok\na x 1\n\n"), Err(ResponseError::PointValue));
        assert_eq!(bad(b"ok\na nan 1\n\n"), Err(ResponseError::PointValue));
        assert_eq!(bad(b"ok\na 1.0 1.5\n\n"), Err(ResponseError::PointTimestamp));
        assert_eq!(bad(b"ok\n\xff 1.0 1\n\n"), Err(ResponseError::NotUtf8));
    }

    /// A point as the encoder takes it, the value as bits so that `-0.0`
    /// and `0.0` differ when compared.
    type Exact = (String, u64, i64);

    fn point() -> impl Strategy<Value = Exact> {
        (key(), value().prop_map(f64::to_bits), timestamp())
    }

    /// An answer: `ok` with its points, or `error` with its message.
    type Answer = Result<Vec<Exact>, String>;

    /// An answer as the server writes it.
    fn answer() -> impl Strategy<Value = Answer> {
        let error = Just(Err("wrong command".to_owned()));
        prop_oneof![9 => prop::collection::vec(point(), 0..12).prop_map(Ok), 1 => error]
    }

    fn encode(answer: &Answer, out: &mut Vec<u8>) {
        let Ok(points) = answer else {
            out.extend_from_slice(WRONG_COMMAND);
            return;
        };
        begin_ok(out);
        for (key, bits, timestamp) in points {
            write_point(out, key, f64::from_bits(*bits), *timestamp);
        }
        end(out);
    }

    /// What the client makes of one answer.
    fn decode(bytes: &[u8]) -> Result<Answer, ResponseError> {
        match parse_response(bytes)? {
            Response::Error { message } => Ok(Err(message.to_owned())),
            ok => ok
                .points()
                .map(|p| p.map(|p| (p.key.to_owned(), p.value.to_bits(), p.timestamp)))
                .collect::<Result<_, _>>()
                .map(Ok),
        }
    }

    proptest! {
        /// Answers the server's encoder writes, back to back and read in any
        /// pieces, are each found whole by the scanner and parse back to
        /// exactly their points (every finite value bit for bit, every
        /// timestamp, every key a put may store).
        #[test]
        fn encoded_answers_parse_back(answers in prop::collection::vec(answer(), 1..6), cuts in cuts()) {
            let mut stream = Vec::new();
            let mut lens = Vec::new();
            for answer in &answers {
                let before = stream.len();
                encode(answer, &mut stream);
                lens.push(stream.len() - before);
            }
            prop_assert_eq!(answers_in_pieces(&stream, &positions(&cuts, stream.len())), lens.clone());
            let mut rest = &stream[..];
            for (answer, len) in answers.iter().zip(lens) {
                let (bytes, next) = rest.split_at(len);
                prop_assert_eq!(&decode(bytes), &Ok(answer.clone()));
                rest = next;
            }
        }

        /// On any bytes, however they arrive, the scanner ends answers where
        /// a plain search for `\n\n` from each answer's start does; parsing
        /// what it delimits never panics.
        #[test]
        fn scanner_does_not_depend_on_cuts(stream in stream(2, 200), cuts in cuts()) {
            let mut expected = Vec::new();
            let mut start = 0;
            while let Some(i) = stream[start..].windows(2).position(|w| w == b"\n\n") {
                expected.push(i + 2);
                start += i + 2;
            }
            let lens = answers_in_pieces(&stream, &positions(&cuts, stream.len()));
            prop_assert_eq!(&lens, &expected);
            let mut rest = &stream[..];
            for len in lens {
                let (bytes, next) = rest.split_at(len);
                let _ = decode(bytes);
                rest = next;
            }
        }
    }
}
