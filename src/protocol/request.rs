//! Requests: one line to a [`Request`], and requests to bytes for clients.

use super::field_len;
use super::number::{parse_timestamp, parse_value, write_fields};
use std::io::Write;

/// One parsed request. Keys borrow the input line: parsing allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Request<'a> {
    /// `put <key> <value> <timestamp>`
    Put { key: &'a str, value: f64, timestamp: i64 },
    /// `get <key>` or `get *`
    Get(Query<'a>),
    /// `stats`: the server's figures (an extension; the course's clients
    /// never send it).
    Stats,
    /// `range <key|*> <from> <to> [<step> <fn>]`: the points of a time
    /// window, or their aggregates per bucket (an extension).
    Range(Range<'a>),
    /// `delete <key>`: removes every point of one key (an extension).
    Delete { key: &'a str },
}

/// What a `range` asks for: the points with `from <= timestamp <= to`
/// (`from <= to`), each one or, with `buckets`, one aggregate per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<'a> {
    pub query: Query<'a>,
    pub from: i64,
    pub to: i64,
    pub buckets: Option<Buckets>,
}

/// Buckets of `step` seconds (`step > 0`), starting where the timestamp is
/// a multiple of `step`, each summed up by `agg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub step: i64,
    pub agg: Agg,
}

/// The aggregate of a bucket's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Agg {
    Avg,
    Min,
    Max,
    Sum,
    /// The number of points, as a float like every value.
    Count,
    /// The value of the latest point.
    Last,
}

impl Agg {
    pub const ALL: [Agg; 6] = [Agg::Avg, Agg::Min, Agg::Max, Agg::Sum, Agg::Count, Agg::Last];

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Agg::Avg => "avg",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Sum => "sum",
            Agg::Count => "count",
            Agg::Last => "last",
        }
    }

    /// The function named `name` (lower case, exact).
    pub fn from_name(name: &[u8]) -> Option<Agg> {
        Agg::ALL.into_iter().find(|agg| agg.name().as_bytes() == name)
    }
}

/// What a `get` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query<'a> {
    /// `get *`: every series.
    All,
    /// `get <key>`: one series.
    Key(&'a str),
}

/// Why a line is not a valid request. Every cause gets the same answer on the
/// wire (`error\nwrong command\n\n`); the cause is for logs and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RequestError {
    /// The first field is not `put`, `get`, `delete`, `stats` or `range`
    /// (they are case-sensitive).
    #[error("unknown command")]
    UnknownCommand,
    /// `put` without exactly three arguments, `get` or `delete` without
    /// exactly one, `stats` with any, `range` without three or five.
    #[error("wrong number of arguments")]
    WrongArity,
    /// A control byte (other than a separating tab or the final `\r`) or DEL.
    #[error("control byte in request")]
    ControlByte,
    /// A field that is not valid UTF-8.
    #[error("request is not valid UTF-8")]
    InvalidUtf8,
    /// A key with Unicode whitespace or a control character in it (see
    /// [`is_valid_key`](super::is_valid_key)).
    #[error("key contains whitespace or a control character")]
    InvalidKey,
    /// `put *`: the wildcard is only a query.
    #[error("`*` is not a key for put")]
    WildcardPut,
    /// The value is not a finite decimal floating-point number.
    #[error("invalid value")]
    InvalidValue,
    /// The timestamp is not a signed 64-bit integer.
    #[error("invalid timestamp")]
    InvalidTimestamp,
    /// The line is longer than the server's limit (reported by the framer).
    #[error("line too long")]
    LineTooLong,
    /// A `range` bound or step that is not a signed 64-bit integer.
    #[error("invalid range bound")]
    InvalidBound,
    /// A `range` whose `from` is after its `to`.
    #[error("range ends before it starts")]
    ReversedRange,
    /// A `range` step that is zero or negative.
    #[error("range step is not above zero")]
    InvalidStep,
    /// A `range` aggregate that is not one of [`Agg`]'s names.
    #[error("unknown aggregate function")]
    UnknownFunction,
    /// `delete *`: deleting everything is not one request.
    #[error("`*` is not a key for delete")]
    WildcardDelete,
}

impl RequestError {
    /// Every cause, for per-cause counters.
    pub const ALL: [RequestError; 14] = [
        RequestError::UnknownCommand,
        RequestError::WrongArity,
        RequestError::ControlByte,
        RequestError::InvalidUtf8,
        RequestError::InvalidKey,
        RequestError::WildcardPut,
        RequestError::InvalidValue,
        RequestError::InvalidTimestamp,
        RequestError::LineTooLong,
        RequestError::InvalidBound,
        RequestError::ReversedRange,
        RequestError::InvalidStep,
        RequestError::UnknownFunction,
        RequestError::WildcardDelete,
    ];

    /// A name for counters and logs, `snake_case`.
    pub fn name(self) -> &'static str {
        match self {
            RequestError::UnknownCommand => "unknown_command",
            RequestError::WrongArity => "wrong_arity",
            RequestError::ControlByte => "control_byte",
            RequestError::InvalidUtf8 => "invalid_utf8",
            RequestError::InvalidKey => "invalid_key",
            RequestError::WildcardPut => "wildcard_put",
            RequestError::InvalidValue => "invalid_value",
            RequestError::InvalidTimestamp => "invalid_timestamp",
            RequestError::LineTooLong => "line_too_long",
            RequestError::InvalidBound => "invalid_bound",
            RequestError::ReversedRange => "reversed_range",
            RequestError::InvalidStep => "invalid_step",
            RequestError::UnknownFunction => "unknown_function",
            RequestError::WildcardDelete => "wildcard_delete",
        }
    }

    /// The position of this cause in [`RequestError::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The most fields a valid request has (`range key from to step fn`).
const MAX_FIELDS: usize = 6;

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses one line (without its `\n`; a single trailing `\r` is ignored).
///
/// `Ok(None)` is a blank line, which is not a request and gets no answer.
pub fn parse_line(line: &[u8]) -> Result<Option<Request<'_>>, RequestError> {
    let mut fields: [&[u8]; MAX_FIELDS] = [&[]; MAX_FIELDS];
    let mut count = 0;
    // One pass over the bytes: each field runs from a non-blank byte to the
    // next byte that cannot be in a field. (Splitting on blanks and then
    // checking each field's bytes took three passes and 450 instructions
    // for a 22-byte put; see BENCHMARKS.md.)
    let mut rest = line.strip_suffix(b"\r").unwrap_or(line);
    while let Some(start) = rest.iter().position(|&b| !is_blank(b)) {
        rest = &rest[start..];
        let end = field_len(rest);
        if count == MAX_FIELDS {
            return Err(match fields[0] {
                b"put" | b"get" | b"delete" | b"stats" | b"range" => RequestError::WrongArity,
                _ => RequestError::UnknownCommand,
            });
        }
        if rest.get(end).is_some_and(|&b| !is_blank(b)) {
            // A control byte inside a field, unless the line is nothing but
            // blanks and `\r`s (`\r\r`), which is a blank line.
            return match line.iter().all(|&b| is_blank(b) || b == b'\r') {
                true => Ok(None),
                false => Err(RequestError::ControlByte),
            };
        }
        fields[count] = &rest[..end];
        count += 1;
        rest = &rest[end..];
    }
    match (fields[0], count) {
        (_, 0) => Ok(None),
        (b"put", 4) => {
            if fields[1] == b"*" {
                return Err(RequestError::WildcardPut);
            }
            Ok(Some(Request::Put {
                key: key(fields[1])?,
                value: parse_value(fields[2]).map_err(|_| RequestError::InvalidValue)?,
                timestamp: parse_timestamp(fields[3]).map_err(|_| RequestError::InvalidTimestamp)?,
            }))
        }
        (b"get", 2) => Ok(Some(Request::Get(match fields[1] {
            b"*" => Query::All,
            field => Query::Key(key(field)?),
        }))),
        (b"stats", 1) => Ok(Some(Request::Stats)),
        (b"range", 4 | 6) => range(&fields[1..count]).map(|r| Some(Request::Range(r))),
        (b"delete", 2) => match fields[1] {
            b"*" => Err(RequestError::WildcardDelete),
            field => Ok(Some(Request::Delete { key: key(field)? })),
        },
        (b"put" | b"get" | b"delete" | b"stats" | b"range", _) => Err(RequestError::WrongArity),
        _ => Err(RequestError::UnknownCommand),
    }
}

/// The arguments of a `range`: `<key|*> <from> <to>`, then perhaps
/// `<step> <fn>`.
fn range<'a>(args: &[&'a [u8]]) -> Result<Range<'a>, RequestError> {
    let query = match args[0] {
        b"*" => Query::All,
        field => Query::Key(key(field)?),
    };
    let bound = |field| parse_timestamp(field).map_err(|_| RequestError::InvalidBound);
    let (from, to) = (bound(args[1])?, bound(args[2])?);
    let buckets = match args[3..] {
        [step, agg] => Some(Buckets {
            step: bound(step)?,
            agg: Agg::from_name(agg).ok_or(RequestError::UnknownFunction)?,
        }),
        _ => None,
    };
    if from > to {
        return Err(RequestError::ReversedRange);
    }
    if buckets.is_some_and(|b| b.step <= 0) {
        return Err(RequestError::InvalidStep);
    }
    Ok(Range {
        query,
        from,
        to,
        buckets,
    })
}

/// A key field: its bytes were checked by the tokenizer, which leaves only
/// non-ASCII text to check (UTF-8 validity, Unicode whitespace and controls).
fn key(field: &[u8]) -> Result<&str, RequestError> {
    if field.is_ascii() {
        // SAFETY: ASCII bytes are UTF-8. `str::from_utf8` checked a
        // 13-byte key a byte at a time, 109 instructions of a put's 1,440;
        // `is_ascii` reads it a word at a time.
        return Ok(unsafe { std::str::from_utf8_unchecked(field) });
    }
    let key = std::str::from_utf8(field).map_err(|_| RequestError::InvalidUtf8)?;
    if super::is_valid_key(key) {
        Ok(key)
    } else {
        Err(RequestError::InvalidKey)
    }
}

/// Appends `put <key> <value> <timestamp>\n`. The caller has checked the key.
pub fn encode_put(out: &mut Vec<u8>, key: &str, value: f64, timestamp: i64) {
    out.extend_from_slice(b"put ");
    out.extend_from_slice(key.as_bytes());
    write_fields(out, value, timestamp);
}

/// Appends `stats\n`.
pub fn encode_stats(out: &mut Vec<u8>) {
    out.extend_from_slice(b"stats\n");
}

/// Appends `delete <key>\n`. The caller has checked the key.
pub fn encode_delete(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(b"delete ");
    out.extend_from_slice(key.as_bytes());
    out.push(b'\n');
}

/// Appends `get <key>\n` or `get *\n`. The caller has checked the key.
pub fn encode_get(out: &mut Vec<u8>, query: Query<'_>) {
    // Writing to a Vec cannot fail.
    let _ = writeln!(out, "get {}", query.field());
}

/// Appends `range <key|*> <from> <to>\n`, or with `<step> <fn>` before the
/// `\n`. The caller has checked the key.
pub fn encode_range(out: &mut Vec<u8>, range: &Range<'_>) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "range {} {} {}", range.query.field(), range.from, range.to);
    if let Some(Buckets { step, agg }) = range.buckets {
        let _ = write!(out, " {step} {}", agg.name());
    }
    out.push(b'\n');
}

impl Query<'_> {
    /// Its field in a request: the key, or `*`.
    fn field(&self) -> &str {
        match self {
            Query::All => "*",
            Query::Key(key) => key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::{
        cuts, frame_in_pieces, key, model_timestamp, model_value, number_text, positions, timestamp, value,
    };
    use crate::protocol::{is_field_byte, Framed};
    use proptest::prelude::*;
    use RequestError::*;

    #[test]
    fn causes_index_their_place_in_all_and_have_distinct_names() {
        for (i, cause) in RequestError::ALL.iter().enumerate() {
            assert_eq!(cause.index(), i);
        }
        let names: std::collections::HashSet<_> = RequestError::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), RequestError::ALL.len());
    }

    #[test]
    fn delete_takes_one_key_and_not_the_wildcard() {
        assert_eq!(
            parse_line(b"delete palm.cpu"),
            Ok(Some(Request::Delete { key: "palm.cpu" }))
        );
        assert_eq!(parse_line(b" delete\tk \r"), Ok(Some(Request::Delete { key: "k" })));
        assert_eq!(parse_line(b"delete a*"), Ok(Some(Request::Delete { key: "a*" })));
        assert_eq!(parse_line(b"delete *"), Err(WildcardDelete));
        assert_eq!(parse_line(b"delete"), Err(WrongArity));
        assert_eq!(parse_line(b"delete a b"), Err(WrongArity));
        assert_eq!(parse_line(b"delete a b c d e"), Err(WrongArity));
        assert_eq!(parse_line(b"DELETE a"), Err(UnknownCommand));
        assert_eq!(parse_line(b"delete a\xc2\xa0b"), Err(InvalidKey));
        assert_eq!(parse_line(b"delete \xff"), Err(InvalidUtf8));
        let mut out = Vec::new();
        encode_delete(&mut out, "palm.cpu");
        assert_eq!(out, b"delete palm.cpu\n");
        assert_eq!(
            parse_line(out.strip_suffix(b"\n").unwrap()),
            Ok(Some(Request::Delete { key: "palm.cpu" }))
        );
    }

    #[test]
    fn stats_takes_no_arguments() {
        assert_eq!(parse_line(b"stats"), Ok(Some(Request::Stats)));
        assert_eq!(parse_line(b" stats \r"), Ok(Some(Request::Stats)));
        assert_eq!(parse_line(b"stats x"), Err(WrongArity));
        assert_eq!(parse_line(b"stats a b c d"), Err(WrongArity));
        assert_eq!(parse_line(b"STATS"), Err(UnknownCommand));
        let mut out = Vec::new();
        encode_stats(&mut out);
        assert_eq!(parse_line(out.strip_suffix(b"\n").unwrap()), Ok(Some(Request::Stats)));
    }

    fn range(query: Query<'_>, from: i64, to: i64, buckets: Option<(i64, Agg)>) -> Option<Request<'_>> {
        let buckets = buckets.map(|(step, agg)| Buckets { step, agg });
        Some(Request::Range(Range {
            query,
            from,
            to,
            buckets,
        }))
    }

    #[test]
    fn range_requests() {
        let k = Query::Key("palm.cpu");
        assert_eq!(parse_line(b"range palm.cpu 10 20"), Ok(range(k, 10, 20, None)));
        assert_eq!(parse_line(b"range * -5 -5"), Ok(range(Query::All, -5, -5, None)));
        assert_eq!(
            parse_line(b" range\tpalm.cpu +0 007  60 avg\r"),
            Ok(range(k, 0, 7, Some((60, Agg::Avg))))
        );
        let extremes = format!("range * {} {} {} last", i64::MIN, i64::MAX, i64::MAX);
        assert_eq!(
            parse_line(extremes.as_bytes()),
            Ok(range(Query::All, i64::MIN, i64::MAX, Some((i64::MAX, Agg::Last))))
        );
        for agg in Agg::ALL {
            let line = format!("range k 1 2 3 {}", agg.name());
            assert_eq!(
                parse_line(line.as_bytes()),
                Ok(range(Query::Key("k"), 1, 2, Some((3, agg))))
            );
        }
        // `**` and `range` itself are keys like any other.
        assert_eq!(
            parse_line(b"range range 1 1"),
            Ok(range(Query::Key("range"), 1, 1, None))
        );
    }

    #[test]
    fn every_malformed_range_has_a_precise_cause() {
        let cases: &[(&[u8], RequestError)] = &[
            (b"range", WrongArity),
            (b"range k", WrongArity),
            (b"range k 1", WrongArity),
            (b"range k 1 2 60", WrongArity),
            (b"range k 1 2 60 avg extra", WrongArity),
            (b"range k 1 2 60 avg extra more", WrongArity),
            (b"range * 1 2 3 4 5 6 7", WrongArity),
            (b"RANGE k 1 2", UnknownCommand),
            (b"Range k 1 2", UnknownCommand),
            (b"range k 1.0 2", InvalidBound),
            (b"range k 1 2.5", InvalidBound),
            (b"range k 1e3 2000", InvalidBound),
            (b"range k now 2", InvalidBound),
            (b"range k 1 9223372036854775808", InvalidBound),
            (b"range k -9223372036854775809 1", InvalidBound),
            (b"range k 1 2 1.5 avg", InvalidBound),
            (b"range k 1 2 1m avg", InvalidBound),
            (b"range k 1 2 99999999999999999999 avg", InvalidBound),
            (b"range k 2 1", ReversedRange),
            (b"range * 2 1 60 avg", ReversedRange),
            (b"range k 9223372036854775807 -9223372036854775808", ReversedRange),
            (b"range k 1 2 0 avg", InvalidStep),
            (b"range k 1 2 -60 sum", InvalidStep),
            (b"range k 1 2 -9223372036854775808 max", InvalidStep),
            (b"range k 1 2 60 mean", UnknownFunction),
            (b"range k 1 2 60 AVG", UnknownFunction),
            (b"range k 1 2 60 *", UnknownFunction),
            (b"range k 1 2 60 average", UnknownFunction),
            (b"range k\x00 1 2", ControlByte),
            (b"range \xff 1 2", InvalidUtf8),
            ("range a\u{a0}b 1 2".as_bytes(), InvalidKey),
        ];
        for (line, cause) in cases {
            assert_eq!(parse_line(line), Err(*cause), "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn aggregate_names_round_trip() {
        for agg in Agg::ALL {
            assert_eq!(Agg::from_name(agg.name().as_bytes()), Some(agg));
        }
        assert_eq!(Agg::from_name(b""), None);
    }

    fn put(key: &str, value: f64, timestamp: i64) -> Option<Request<'_>> {
        Some(Request::Put { key, value, timestamp })
    }

    #[test]
    fn valid_requests() {
        assert_eq!(
            parse_line(b"put palm.cpu 23.7 1150864247"),
            Ok(put("palm.cpu", 23.7, 1150864247))
        );
        assert_eq!(
            parse_line(b"get palm.cpu"),
            Ok(Some(Request::Get(Query::Key("palm.cpu"))))
        );
        assert_eq!(parse_line(b"get *"), Ok(Some(Request::Get(Query::All))));
        assert_eq!(
            parse_line(b"get palm.cpu\r"),
            Ok(Some(Request::Get(Query::Key("palm.cpu"))))
        );
        assert_eq!(parse_line(b" \tput  k\t\t-1   -5 \t"), Ok(put("k", -1.0, -5)));
        assert_eq!(parse_line(b"put k +0.5 +7"), Ok(put("k", 0.5, 7)));
        assert_eq!(parse_line(b"put k 1e-3 0"), Ok(put("k", 0.001, 0)));
        assert_eq!(parse_line(b"put k 4200000 0"), Ok(put("k", 4200000.0, 0)));
        assert_eq!(
            parse_line("put \u{0436}.\u{1F600} 1 2".as_bytes()),
            Ok(put("\u{0436}.\u{1F600}", 1.0, 2))
        );
        assert_eq!(parse_line(b"put * 1 2"), Err(WildcardPut));
        assert_eq!(parse_line(b"get **"), Ok(Some(Request::Get(Query::Key("**")))));
        let max = format!("put k 1 {}", i64::MAX);
        assert_eq!(parse_line(max.as_bytes()), Ok(put("k", 1.0, i64::MAX)));
        let min = format!("put k 1 {}", i64::MIN);
        assert_eq!(parse_line(min.as_bytes()), Ok(put("k", 1.0, i64::MIN)));
    }

    #[test]
    fn blank_lines_are_not_requests() {
        for line in [&b""[..], b" ", b"\t \t", b"\r", b"\r\r", b" \r"] {
            assert_eq!(parse_line(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn every_invalid_form_has_a_precise_cause() {
        let cases: &[(&[u8], RequestError)] = &[
            (b"PUT k 1 2", UnknownCommand),
            (b"Get k", UnknownCommand),
            (b"put, k 1 2", UnknownCommand),
            (b"got k", UnknownCommand),
            (b"wrong command test", UnknownCommand),
            (b"a b c d e f", UnknownCommand),
            (b"get", WrongArity),
            (b"get a b", WrongArity),
            (b"put a 1", WrongArity),
            (b"put a 1 2 3", WrongArity),
            (b"put", WrongArity),
            (b"get wrong command test", WrongArity),
            (b"put palm.cpu abc 1", InvalidValue),
            (b"put k nan 1", InvalidValue),
            (b"put k NaN 1", InvalidValue),
            (b"put k inf 1", InvalidValue),
            (b"put k -infinity 1", InvalidValue),
            (b"put k 1e400 1", InvalidValue),
            (b"put k 0,5 1", InvalidValue),
            (b"put k 0x10 1", InvalidValue),
            (b"put k . 1", InvalidValue),
            (b"put k 1 1.0", InvalidTimestamp),
            (b"put k 1 1e9", InvalidTimestamp),
            (b"put k 1 9223372036854775808", InvalidTimestamp),
            (b"put k 1 abc", InvalidTimestamp),
            (b"put k 1 --1", InvalidTimestamp),
            (b"put k\x00 1 2", ControlByte),
            (b"put k 1 2\x7f", ControlByte),
            (b"get a\rb", ControlByte),
            (b"get a\r\r", ControlByte),
            (b"get a\x0b", ControlByte),
            (b"put \xff 1 2", InvalidUtf8),
            (b"get \xc3", InvalidUtf8),
            ("put a\u{a0}b 1 2".as_bytes(), InvalidKey),
            ("get a\u{2028}".as_bytes(), InvalidKey),
            ("get \u{3000}".as_bytes(), InvalidKey),
            ("get a\u{85}".as_bytes(), InvalidKey),
        ];
        for (line, cause) in cases {
            assert_eq!(parse_line(line), Err(*cause), "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn encoded_requests_parse_back() {
        let mut out = Vec::new();
        for (key, value, ts) in [
            ("a", 0.1, 0),
            ("palm.cpu", -4200000.0, -1),
            ("z", 1e-300, i64::MAX),
            ("q", 5e300, i64::MIN),
        ] {
            out.clear();
            encode_put(&mut out, key, value, ts);
            assert_eq!(out.last(), Some(&b'\n'));
            assert_eq!(parse_line(&out[..out.len() - 1]), Ok(put(key, value, ts)));
        }
        out.clear();
        encode_get(&mut out, Query::All);
        assert_eq!(out, b"get *\n");
        out.clear();
        encode_get(&mut out, Query::Key("palm.cpu"));
        assert_eq!(out, b"get palm.cpu\n");
        out.clear();
        let request = Range {
            query: Query::All,
            from: i64::MIN,
            to: 5,
            buckets: Some(Buckets {
                step: 60,
                agg: Agg::Count,
            }),
        };
        encode_range(&mut out, &request);
        assert_eq!(out, b"range * -9223372036854775808 5 60 count\n");
        out.clear();
        encode_range(
            &mut out,
            &Range {
                query: Query::Key("k"),
                buckets: None,
                ..request
            },
        );
        assert_eq!(out, b"range k -9223372036854775808 5\n");
    }

    /// A request with its value as bits, so that `-0.0` and `0.0` differ
    /// when compared.
    #[derive(Debug, Clone, PartialEq)]
    enum Exact {
        Put(String, u64, i64),
        /// `None` is `get *`.
        Get(Option<String>),
        Stats,
        /// `None` is `range *`.
        Range(Option<String>, i64, i64, Option<Buckets>),
        Delete(String),
    }

    impl From<Request<'_>> for Exact {
        fn from(request: Request<'_>) -> Exact {
            match request {
                Request::Put { key, value, timestamp } => Exact::Put(key.to_owned(), value.to_bits(), timestamp),
                Request::Get(Query::All) => Exact::Get(None),
                Request::Get(Query::Key(key)) => Exact::Get(Some(key.to_owned())),
                Request::Stats => Exact::Stats,
                Request::Range(r) => Exact::Range(
                    match r.query {
                        Query::All => None,
                        Query::Key(key) => Some(key.to_owned()),
                    },
                    r.from,
                    r.to,
                    r.buckets,
                ),
                Request::Delete { key } => Exact::Delete(key.to_owned()),
            }
        }
    }

    fn request() -> impl Strategy<Value = Exact> {
        let put = (key(), value().prop_map(f64::to_bits), timestamp());
        let buckets = (1..=i64::MAX, prop::sample::select(&Agg::ALL[..])).prop_map(|(step, agg)| Buckets { step, agg });
        let range = (
            prop::option::weighted(0.9, key()),
            timestamp(),
            timestamp(),
            prop::option::of(buckets),
        )
            .prop_map(|(k, a, b, buckets)| Exact::Range(k, a.min(b), a.max(b), buckets));
        prop_oneof![
            3 => put.prop_map(|(k, v, t)| Exact::Put(k, v, t)),
            1 => prop::option::weighted(0.9, key()).prop_map(Exact::Get),
            1 => Just(Exact::Stats),
            1 => range,
            1 => key().prop_map(Exact::Delete),
        ]
    }

    proptest! {
        /// What the client encodes, pipelined and arriving in any pieces,
        /// the server frames and parses back to exactly the same requests:
        /// every key a put may store, every finite value bit for bit, every
        /// timestamp.
        #[test]
        fn encoded_requests_frame_and_parse_back(requests in prop::collection::vec(request(), 1..12), cuts in cuts()) {
            let mut wire = Vec::new();
            for request in &requests {
                match request {
                    Exact::Put(key, bits, timestamp) => encode_put(&mut wire, key, f64::from_bits(*bits), *timestamp),
                    Exact::Get(key) => encode_get(&mut wire, key.as_deref().map_or(Query::All, Query::Key)),
                    Exact::Stats => encode_stats(&mut wire),
                    Exact::Range(key, from, to, buckets) => encode_range(
                        &mut wire,
                        &Range { query: key.as_deref().map_or(Query::All, Query::Key), from: *from, to: *to, buckets: *buckets },
                    ),
                    Exact::Delete(key) => encode_delete(&mut wire, key),
                }
            }
            let mut parsed = Vec::new();
            for framed in frame_in_pieces(64 * 1024, &wire, &positions(&cuts, wire.len())) {
                let Framed::Line(line) = framed else {
                    panic!("{framed:?} in {wire:?}");
                };
                parsed.push(parse_line(line).map(|r| r.map(Exact::from)));
            }
            let expected: Vec<_> = requests.into_iter().map(|r| Ok(Some(r))).collect();
            prop_assert_eq!(parsed, expected);
        }

        /// The one-pass parser against the three-pass one it replaced, kept
        /// here as the model (with the standard number parsers): the same
        /// request or the same cause for any line, whatever its bytes.
        #[test]
        fn parsing_matches_the_model(line in line()) {
            let model = model_parse_line(&line).map(|r| r.map(Exact::from));
            prop_assert_eq!(parse_line(&line).map(|r| r.map(Exact::from)), model);
        }

    }

    /// The parser before it took one pass (splitting on blanks, then
    /// checking each field), with the standard number parsers.
    fn model_parse_line(line: &[u8]) -> Result<Option<Request<'_>>, RequestError> {
        if line.iter().all(|&b| is_blank(b) || b == b'\r') {
            return Ok(None);
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let fields: Vec<&[u8]> = line.split(|&b| is_blank(b)).filter(|f| !f.is_empty()).collect();
        for (i, field) in fields.iter().enumerate() {
            if i == MAX_FIELDS {
                return Err(match fields[0] {
                    b"put" | b"get" | b"stats" | b"range" => WrongArity,
                    _ => UnknownCommand,
                });
            }
            if !field.iter().all(|&b| is_field_byte(b)) {
                return Err(ControlByte);
            }
        }
        match fields[..] {
            [b"put", b"*", _, _] => Err(WildcardPut),
            [b"put", k, v, t] => Ok(Some(Request::Put {
                key: super::key(k)?,
                value: model_value(v).map_err(|_| InvalidValue)?,
                timestamp: model_timestamp(t).map_err(|_| InvalidTimestamp)?,
            })),
            [b"get", b"*"] => Ok(Some(Request::Get(Query::All))),
            [b"get", k] => Ok(Some(Request::Get(Query::Key(super::key(k)?)))),
            [b"stats"] => Ok(Some(Request::Stats)),
            [b"range", k, from, to, ref bucketing @ ..] if matches!(bucketing.len(), 0 | 2) => {
                let query = match k {
                    b"*" => Query::All,
                    k => Query::Key(super::key(k)?),
                };
                let bound = |f: &[u8]| model_timestamp(f).map_err(|_| InvalidBound);
                let (from, to) = (bound(from)?, bound(to)?);
                let buckets = match bucketing {
                    [step, agg] => {
                        let step = bound(step)?;
                        let agg = Agg::ALL.into_iter().find(|a| a.name().as_bytes() == *agg);
                        Some(Buckets {
                            step,
                            agg: agg.ok_or(UnknownFunction)?,
                        })
                    }
                    _ => None,
                };
                match buckets {
                    _ if from > to => Err(ReversedRange),
                    Some(b) if b.step <= 0 => Err(InvalidStep),
                    _ => Ok(Some(Request::Range(Range {
                        query,
                        from,
                        to,
                        buckets,
                    }))),
                }
            }
            [b"put" | b"get" | b"stats" | b"range", ..] => Err(WrongArity),
            _ => Err(UnknownCommand),
        }
    }

    /// Lines near the valid ones: commands, keys, numbers and `*` as
    /// fields, joined by runs of blanks, sometimes with a stray control
    /// byte, `\r` or non-ASCII byte, sometimes a `\r` at the end.
    fn line() -> impl Strategy<Value = Vec<u8>> {
        let field = prop_oneof![
            prop::sample::select(vec![
                "put", "get", "stats", "range", "*", "PUT", "k", "palm.cpu", "1.5", "-3", "1e9", "60", "0", "avg",
                "count", "last"
            ])
            .prop_map(|f| f.as_bytes().to_vec()),
            key().prop_map(String::into_bytes),
            number_text(b"0123456789.eE+-", 12),
            prop::collection::vec(any::<u8>(), 1..4),
        ];
        let gap = prop::collection::vec(prop::sample::select(&b" \t\r\x00"[..]), 0..3);
        (prop::collection::vec((gap.clone(), field), 0..8), gap, any::<bool>()).prop_map(|(parts, tail, cr)| {
            let mut line = Vec::new();
            for (gap, field) in parts {
                line.extend(gap.iter().map(|&b| if b == b'\r' || b == 0 { b } else { b' ' }));
                line.push(b' ');
                line.extend(field);
            }
            line.extend(tail);
            if cr {
                line.push(b'\r');
            }
            line
        })
    }
}
