//! Fuzzes the client's side of the protocol: arbitrary bytes through
//! [`ResponseScanner::check`] (fed whole and in two pieces) and every answer
//! it delimits through [`parse_response`]; and answers built by the server's
//! encoder from fuzzer-made points.
//!
//! Input: bytes 0 and 1 pick the cut between the two pieces; all the input is
//! the stream, and read again through [`Unstructured`] it is the points.
//!
//! Invariants, each a `panic!` that libFuzzer reports as a crash:
//! - the scanner finds the same answer ends for every cut, and they are the
//!   ends a plain search for `\n\n` from each answer's start finds;
//! - parsing never panics, on delimited answers or on any bytes at all;
//! - a data line that parses prints back (with `write_point`) to one that
//!   parses to the same point, value bits included;
//! - an answer encoded with `begin_ok`/`write_point`/`end` is one whole answer
//!   to the scanner and parses back to exactly its points.

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use metricsd::protocol::response::{begin_ok, end, parse_response, write_point};
use metricsd::protocol::{is_valid_key, Response, ResponseScanner};

/// A point as the encoder takes it.
type Owned = (String, f64, i64);

/// Enough points for a long answer, few enough to keep executions fast.
const MAX_POINTS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let cut = match data {
        [a, b, ..] => u16::from_le_bytes([*a, *b]) as usize % (data.len() + 1),
        _ => 0,
    };
    let whole = answer_ends(data, data.len());
    assert_eq!(whole, answer_ends(data, cut), "cut at {cut}");
    assert_eq!(whole, reference_ends(data));
    let mut start = 0;
    for &end in &whole {
        check_answer(&data[start..end]);
        start = end;
    }
    // parse_response is public: it must cope with bytes no scanner delimited.
    let _ = parse_response(data).map(|r| r.points().count());
    check_encoder_round_trip(&points(&mut Unstructured::new(data)));
});

/// Where the complete answers in `stream` end, fed as `stream[..cut]` then
/// `stream[cut..]` the way the client reads: it keeps unparsed bytes and
/// appends what arrives next.
fn answer_ends(stream: &[u8], cut: usize) -> Vec<usize> {
    let mut scanner = ResponseScanner::new();
    let mut buf = Vec::new();
    let mut start = 0;
    let mut ends = Vec::new();
    for piece in [&stream[..cut], &stream[cut..]] {
        buf.extend_from_slice(piece);
        while let Some(len) = scanner.check(&buf[start..]) {
            assert!(
                len <= buf.len() - start,
                "answer of {len} past the {} bytes given",
                buf.len() - start
            );
            start += len;
            ends.push(start);
        }
    }
    ends
}

/// The same ends, found the slow obvious way.
fn reference_ends(stream: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut start = 0;
    while let Some(i) = stream[start..].windows(2).position(|w| w == b"\n\n") {
        start += i + 2;
        ends.push(start);
    }
    ends
}

/// Parses one delimited answer; every data line that parses must survive
/// being written again by the server's encoder.
fn check_answer(answer: &[u8]) {
    let Ok(response) = parse_response(answer) else {
        return;
    };
    let parsed: Vec<Owned> = response
        .points()
        .filter_map(Result::ok)
        .map(|p| (p.key.to_owned(), p.value, p.timestamp))
        .collect();
    for (key, value, _) in &parsed {
        assert!(!key.is_empty() && !key.contains([' ', '\n']), "point key {key:?}");
        assert!(value.is_finite());
    }
    check_encoder_round_trip(&parsed);
}

/// Points made from fuzzer bytes: keys reduced to their characters that a
/// key may hold, values that are finite.
fn points(u: &mut Unstructured<'_>) -> Vec<Owned> {
    let mut points = Vec::new();
    while points.len() < MAX_POINTS && !u.is_empty() {
        let (Ok(text), Ok(bits), Ok(timestamp)) = (u.arbitrary::<&str>(), u.arbitrary::<u64>(), u.arbitrary::<i64>())
        else {
            break;
        };
        let mut key: String = text
            .chars()
            .filter(|c| is_valid_key(c.encode_utf8(&mut [0; 4])))
            .collect();
        if key.is_empty() {
            key.push('k');
        }
        let value = f64::from_bits(bits);
        if value.is_finite() {
            points.push((key, value, timestamp));
        }
    }
    points
}

/// Encodes `points` as the server does; the scanner must see exactly one
/// answer and the parser exactly these points.
fn check_encoder_round_trip(points: &[Owned]) {
    let mut out = Vec::new();
    begin_ok(&mut out);
    for (key, value, timestamp) in points {
        write_point(&mut out, key, *value, *timestamp);
    }
    end(&mut out);
    assert_eq!(ResponseScanner::new().check(&out), Some(out.len()), "{out:?}");
    let Ok(response @ Response::Ok { .. }) = parse_response(&out) else {
        panic!("encoded answer {out:?} does not parse as ok");
    };
    let back: Vec<(String, u64, i64)> = response
        .points()
        .map(|p| {
            let p = p.unwrap_or_else(|e| panic!("{e} in {out:?}"));
            (p.key.to_owned(), p.value.to_bits(), p.timestamp)
        })
        .collect();
    let want: Vec<(String, u64, i64)> = points.iter().map(|(k, v, t)| (k.clone(), v.to_bits(), *t)).collect();
    assert_eq!(back, want);
}
