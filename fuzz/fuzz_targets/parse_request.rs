//! Fuzzes the server's side of the protocol: arbitrary bytes through
//! [`LineFramer`] (fed whole and in two pieces, under a small and a large line
//! limit), and every line it yields through [`parse_line`].
//!
//! Input: byte 0 picks the limits, bytes 1 and 2 the cut between the two
//! pieces; all the input (those three bytes included, so no byte is wasted) is
//! the stream.
//!
//! Invariants, each a `panic!` that libFuzzer reports as a crash:
//! - the framer never reports more consumed than it was given, always makes
//!   progress on a line, yields lines within the limit and without `\n`, and
//!   keeps at most `max_line` unconsumed bytes after `Incomplete` (the bound on
//!   per-connection memory);
//! - the lines it yields do not depend on how the input was cut;
//! - a parsed request, encoded again with its `encode_*`, parses back to
//!   the same request, value bits included;
//! - a key is accepted by `parse_line` exactly when `is_valid_key` accepts it;
//! - a value or timestamp field that parses prints back to the same number.

#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::protocol::number::{parse_timestamp, parse_value, write_timestamp, write_value};
use metricsd::protocol::request::{encode_delete, encode_get, encode_put, encode_range, encode_stats};
use metricsd::protocol::{is_valid_key, parse_line, Framed, LineFramer, Query, Request, RequestError};

/// A framing event with its line copied out: `Some(line)` or `None` for
/// `TooLong`.
type Event = Option<Vec<u8>>;

/// The large limits: the server's default, the command line's maximum, and
/// the largest an embedding program can pass to `Server::bind` (where
/// `max_line + 1` must not overflow).
const LARGE_LIMITS: [usize; 3] = [65536, 64 << 20, usize::MAX];

fuzz_target!(|data: &[u8]| {
    let pick = data.first().copied().unwrap_or(0) as usize;
    // Small limits make overlong lines, and their discarding across pieces,
    // common in short inputs.
    let small = 1 + pick % 48;
    let large = LARGE_LIMITS[pick % LARGE_LIMITS.len()];
    let cut = match data {
        [_, a, b, ..] => u16::from_le_bytes([*a, *b]) as usize % (data.len() + 1),
        _ => 0,
    };
    for max_line in [small, large] {
        let whole = frame(max_line, data, data.len());
        assert_eq!(whole, frame(max_line, data, cut), "max_line {max_line}, cut at {cut}");
        for line in whole.iter().flatten() {
            check_line(line);
        }
    }
});

/// Frames `input` fed as `input[..cut]` then `input[cut..]`, the way a
/// connection feeds its framer: unconsumed bytes are kept and the next piece
/// is appended to them. Checks every step.
fn frame(max_line: usize, input: &[u8], cut: usize) -> Vec<Event> {
    let mut framer = LineFramer::new(max_line);
    let mut pending = Vec::new();
    let mut events = Vec::new();
    for piece in [&input[..cut], &input[cut..]] {
        pending.extend_from_slice(piece);
        loop {
            let (framed, used) = framer.next(&pending);
            assert!(used <= pending.len(), "consumed {used} of {}", pending.len());
            let event = match framed {
                Framed::Line(line) => {
                    assert!(line.len() <= max_line, "line of {} over {max_line}", line.len());
                    assert!(!line.contains(&b'\n'));
                    // The line is the bytes just before the consumed `\n`.
                    assert!(used > line.len() && pending[used - 1] == b'\n');
                    assert_eq!(&pending[used - 1 - line.len()..used - 1], line);
                    Some(line.to_vec())
                }
                Framed::TooLong => {
                    assert!(used > 0, "TooLong consumed nothing");
                    None
                }
                Framed::Incomplete => {
                    let kept = pending.len() - used;
                    assert!(kept <= max_line, "kept {kept} bytes over a limit of {max_line}");
                    pending.drain(..used);
                    break;
                }
            };
            pending.drain(..used);
            events.push(event);
        }
    }
    events
}

/// Parses one framed line and checks what came out.
fn check_line(line: &[u8]) {
    match parse_line(line) {
        Ok(None) => assert!(line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'))),
        Ok(Some(request)) => check_request_round_trip(request),
        // Only the framer knows a line is too long.
        Err(cause) => assert_ne!(cause, RequestError::LineTooLong),
    }
    // The line as a key, a value and a timestamp on their own: the fuzzer
    // reaches odd keys and numbers faster without finding `put` first.
    if let Ok(text) = std::str::from_utf8(line) {
        check_key(text);
    }
    if let Ok(value) = parse_value(line) {
        assert!(value.is_finite());
        let mut out = Vec::new();
        write_value(&mut out, value);
        assert_eq!(parse_value(&out).map(f64::to_bits), Ok(value.to_bits()), "{value:?}");
    }
    if let Ok(timestamp) = parse_timestamp(line) {
        let mut out = Vec::new();
        write_timestamp(&mut out, timestamp);
        assert_eq!(parse_timestamp(&out), Ok(timestamp));
    }
}

/// A parsed request holds a valid key and encodes to a line that parses back
/// to exactly the same request.
fn check_request_round_trip(request: Request<'_>) {
    let mut out = Vec::new();
    match request {
        Request::Put { key, value, timestamp } => {
            assert!(is_valid_key(key) && key != "*", "put accepted key {key:?}");
            assert!(value.is_finite());
            encode_put(&mut out, key, value, timestamp);
        }
        Request::Get(query) => {
            if let Query::Key(key) = query {
                assert!(is_valid_key(key) && key != "*", "get accepted key {key:?}");
            }
            encode_get(&mut out, query);
        }
        Request::Range(range) => {
            if let Query::Key(key) = range.query {
                assert!(is_valid_key(key) && key != "*", "range accepted key {key:?}");
            }
            assert!(range.from <= range.to, "range accepted {range:?}");
            assert!(range.buckets.is_none_or(|b| b.step > 0), "range accepted {range:?}");
            encode_range(&mut out, &range);
        }
        Request::Delete { key } => {
            assert!(is_valid_key(key) && key != "*", "delete accepted key {key:?}");
            encode_delete(&mut out, key);
        }
        Request::Stats => encode_stats(&mut out),
    }
    let encoded = out.strip_suffix(b"\n").expect("an encoded request ends in \\n");
    assert!(!encoded.contains(&b'\n'), "encoded request spans lines: {out:?}");
    match parse_line(encoded) {
        Ok(Some(again)) => assert!(same(request, again), "{request:?} came back as {again:?}"),
        other => panic!("{request:?} encoded as {out:?} parsed as {other:?}"),
    }
}

/// `parse_line` takes `text` as a key exactly when `is_valid_key` does (`*`
/// aside, which is the wildcard of `get` and refused by `put`).
fn check_key(text: &str) {
    if text == "*" {
        return;
    }
    let mut line = Vec::new();
    if is_valid_key(text) {
        encode_put(&mut line, text, 1.0, 0);
        let put = Request::Put {
            key: text,
            value: 1.0,
            timestamp: 0,
        };
        assert_eq!(parse_line(line.strip_suffix(b"\n").unwrap()), Ok(Some(put)));
        line.clear();
        encode_get(&mut line, Query::Key(text));
        let get = Request::Get(Query::Key(text));
        assert_eq!(parse_line(line.strip_suffix(b"\n").unwrap()), Ok(Some(get)));
    } else {
        line.extend_from_slice(b"get ");
        line.extend_from_slice(text.as_bytes());
        // It may parse as some other key (blanks around it are dropped), but
        // never as this one.
        if let Ok(Some(Request::Get(Query::Key(key)))) = parse_line(&line) {
            assert_ne!(key, text, "invalid key {text:?} accepted");
        }
    }
}

/// Request equality with values compared bit for bit (`-0.0` is not `0.0`).
fn same(a: Request<'_>, b: Request<'_>) -> bool {
    match (a, b) {
        (
            Request::Put { key, value, timestamp },
            Request::Put {
                key: k,
                value: v,
                timestamp: t,
            },
        ) => key == k && value.to_bits() == v.to_bits() && timestamp == t,
        (Request::Get(q), Request::Get(r)) => q == r,
        (Request::Range(q), Request::Range(r)) => q == r,
        (Request::Delete { key }, Request::Delete { key: k }) => key == k,
        (Request::Stats, Request::Stats) => true,
        _ => false,
    }
}
