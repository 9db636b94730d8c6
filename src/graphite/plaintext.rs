//! Graphite's plaintext protocol: one `<path> <value> [<timestamp>]` line to
//! a [`Metric`], or a [`PlaintextError`] saying why the line is skipped.
//!
//! What is accepted, and where it comes from:
//! - Fields are separated by one or more spaces or tabs; one trailing `\r` is
//!   dropped (carbon splits a stripped line on whitespace; agents send
//!   `\n` or `\r\n`).
//! - The value is a decimal number as the course protocol reads it
//!   ([`parse_value`]): `23.7`, `-0`, `+1`, `.5`, `5.`, `1e3`. Carbon reads it
//!   with Python's `float()`, which also takes `nan`, `inf`, `infinity` and
//!   overflowing exponents: those are refused here as
//!   [`PlaintextError::NonFiniteValue`], a cause of its own so that the
//!   counter shows agents that send them. `float()`'s digit separators
//!   (`1_000`) and non-ASCII digits no agent sends; they are invalid values.
//! - The timestamp is what `int(float(text))` gives, as carbon computes it: a
//!   fraction is truncated toward zero (`1150864247.9` is `1150864247`), an
//!   exponent is allowed (`1.15e9`). `-1` after truncation (so also `-1.5`)
//!   or a missing timestamp means "now", which the caller supplies.
//! - The path is stored under the canonical form carbon and graphite-web give
//!   it (`TaggedSeries.parse(path).path`): the name loses leading `~`, tags
//!   `name;tag=value;…` are validated by their rules and sorted, a repeated
//!   tag keeps its last value, and a `name` tag is replaced by the name. The
//!   key must also be a key of the course protocol
//!   ([`is_valid_key`]), and not `*`.
//!
//! Lines come from the course protocol's bounded [`LineFramer`] (TCP) or from
//! [`datagram_lines`] (UDP); [`PlaintextDecoder`] puts framer and parser
//! together for a stream.

use crate::protocol::number::{parse_timestamp, parse_value};
use crate::protocol::{is_field_byte, is_valid_key, Framed, LineFramer};
use std::borrow::Cow;

/// Carbon's longest line, before its `\n`: Twisted's
/// `LineOnlyReceiver.MAX_LENGTH` (16384). Carbon drops the connection on a
/// longer line; metricsd skips the line and counts it. The server's
/// Graphite port takes `--max-line-bytes` instead (65536 by default, so
/// every line carbon accepts is accepted); this is the bound for tools that
/// decode plaintext without a server's settings.
pub const DEFAULT_MAX_LINE: usize = 16384;

/// One point sent over the plaintext protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric<'a> {
    /// The canonical key. Borrowed from the line unless the tags had to be
    /// reordered (or de-duplicated, or a `name` tag dropped).
    pub key: Cow<'a, str>,
    /// A finite value.
    pub value: f64,
    pub timestamp: Timestamp,
}

/// When a point was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// Seconds since the Unix epoch.
    At(i64),
    /// `-1` or no timestamp: the receiver's clock decides.
    Now,
}

impl Timestamp {
    /// The timestamp in seconds, with `now` standing for [`Timestamp::Now`].
    pub fn or_now(self, now: i64) -> i64 {
        match self {
            Timestamp::At(t) => t,
            Timestamp::Now => now,
        }
    }
}

/// Why a line is skipped. The server never answers on the plaintext port;
/// each cause is counted on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PlaintextError {
    /// One field, or more than three.
    #[error("wrong number of fields")]
    WrongFieldCount,
    /// The path is not valid UTF-8.
    #[error("path is not valid UTF-8")]
    InvalidUtf8,
    /// The path holds a control character or Unicode whitespace, or is `*`.
    #[error("path is not a valid key")]
    InvalidKey,
    /// The name before the tags is empty (or only `~`).
    #[error("empty metric name")]
    EmptyName,
    /// A `;tag=value` segment breaks graphite's tag rules: no `=`, an empty
    /// tag or value, `!` or `^` in the tag, a value starting with `~`.
    #[error("invalid tag")]
    InvalidTag,
    /// The value is not a decimal number.
    #[error("invalid value")]
    InvalidValue,
    /// The value is NaN or infinite (`nan`, `inf`, `1e999`).
    #[error("value is not finite")]
    NonFiniteValue,
    /// The timestamp is not a number, or out of the 64-bit range.
    #[error("invalid timestamp")]
    InvalidTimestamp,
    /// The line is longer than the limit (reported by the framer).
    #[error("line too long")]
    LineTooLong,
}

impl PlaintextError {
    /// Every cause, for per-cause counters.
    pub const ALL: [PlaintextError; 9] = [
        PlaintextError::WrongFieldCount,
        PlaintextError::InvalidUtf8,
        PlaintextError::InvalidKey,
        PlaintextError::EmptyName,
        PlaintextError::InvalidTag,
        PlaintextError::InvalidValue,
        PlaintextError::NonFiniteValue,
        PlaintextError::InvalidTimestamp,
        PlaintextError::LineTooLong,
    ];

    /// A name for counters and logs, `snake_case`.
    pub fn name(self) -> &'static str {
        match self {
            PlaintextError::WrongFieldCount => "wrong_field_count",
            PlaintextError::InvalidUtf8 => "invalid_utf8",
            PlaintextError::InvalidKey => "invalid_key",
            PlaintextError::EmptyName => "empty_name",
            PlaintextError::InvalidTag => "invalid_tag",
            PlaintextError::InvalidValue => "invalid_value",
            PlaintextError::NonFiniteValue => "non_finite_value",
            PlaintextError::InvalidTimestamp => "invalid_timestamp",
            PlaintextError::LineTooLong => "line_too_long",
        }
    }

    /// The position of this cause in [`PlaintextError::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses one line (without its `\n`; one trailing `\r` is ignored).
///
/// `Ok(None)` is a line of nothing but blanks: not a point, and not counted
/// as bad (the course protocol treats blank lines the same way).
pub fn parse_line(line: &[u8]) -> Result<Option<Metric<'_>>, PlaintextError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut fields: [&[u8]; 3] = [&[]; 3];
    let mut count = 0;
    for field in line.split(|&b| is_blank(b)).filter(|f| !f.is_empty()) {
        if count == fields.len() {
            return Err(PlaintextError::WrongFieldCount);
        }
        fields[count] = field;
        count += 1;
    }
    match count {
        0 => return Ok(None),
        1 => return Err(PlaintextError::WrongFieldCount),
        _ => {}
    }
    // Fields are checked in line order, so that a line with several bad
    // fields always has the same cause.
    Ok(Some(Metric {
        key: canonical_key(fields[0])?,
        value: value(fields[1])?,
        timestamp: match count {
            2 => Timestamp::Now,
            _ => timestamp(fields[2])?,
        },
    }))
}

/// The path field as a canonical key (see the module documentation).
pub fn canonical_key(field: &[u8]) -> Result<Cow<'_, str>, PlaintextError> {
    let path = std::str::from_utf8(field).map_err(|_| PlaintextError::InvalidUtf8)?;
    let valid = match path.is_ascii() {
        true => path.bytes().all(is_field_byte),
        false => is_valid_key(path),
    };
    if !valid || path == "*" {
        return Err(PlaintextError::InvalidKey);
    }
    let (name, tags) = match path.split_once(';') {
        Some((name, tags)) => (name, Some(tags)),
        None => (path, None),
    };
    // graphite-web: "no metric found" for an empty name, then the name
    // without its leading `~` must not be empty either.
    let stripped = name.trim_start_matches('~');
    if stripped.is_empty() {
        return Err(PlaintextError::EmptyName);
    }
    let Some(tags) = tags else {
        return Ok(Cow::Borrowed(stripped));
    };
    let mut in_order = stripped.len() == name.len();
    let mut previous: Option<&str> = None;
    for segment in tags.split(';') {
        let tag = check_tag(segment)?;
        // Borrowed only if every tag is already where the canonical form puts
        // it: segments strictly ascending with distinct tags, no `name` tag.
        // (Segments of one tag share the prefix `tag=`, so duplicates sort
        // next to each other.)
        in_order &= tag != "name" && previous.is_none_or(|p| p < segment && tag_of(p) != tag);
        previous = Some(segment);
    }
    if in_order {
        let start = name.len() - stripped.len();
        return Ok(Cow::Borrowed(&path[start..]));
    }
    Ok(Cow::Owned(sorted_tags(stripped, tags)))
}

/// The tag of a checked `tag=value` segment.
fn tag_of(segment: &str) -> &str {
    segment.split_once('=').map_or(segment, |(tag, _)| tag)
}

/// Checks a `tag=value` segment by graphite-web's `validateTagAndValue` and
/// returns the tag. `;` cannot occur (it separates the segments) nor `=` in
/// the tag (the first `=` ends it).
fn check_tag(segment: &str) -> Result<&str, PlaintextError> {
    let (tag, value) = segment.split_once('=').ok_or(PlaintextError::InvalidTag)?;
    let bad_tag = tag.is_empty() || tag.contains(['!', '^']);
    if bad_tag || value.is_empty() || value.starts_with('~') {
        return Err(PlaintextError::InvalidTag);
    }
    Ok(tag)
}

/// `name;tag=value…` in graphite's canonical order: a dict of the tags (the
/// last value of a repeated tag wins, `name` is the metric name), formatted
/// as `;tag=value` strings sorted as strings.
fn sorted_tags(name: &str, tags: &str) -> String {
    let mut segments: Vec<&str> = tags.split(';').filter(|s| tag_of(s) != "name").collect();
    // A stable sort by tag keeps repeated tags in line order; the last wins.
    segments.sort_by_key(|s| tag_of(s));
    let mut last_of_each: Vec<&str> = Vec::with_capacity(segments.len());
    for segment in segments {
        match last_of_each.last_mut() {
            Some(last) if tag_of(last) == tag_of(segment) => *last = segment,
            _ => last_of_each.push(segment),
        }
    }
    last_of_each.sort_unstable();
    let mut key = String::with_capacity(name.len() + tags.len() + 1);
    key.push_str(name);
    for segment in last_of_each {
        key.push(';');
        key.push_str(segment);
    }
    key
}

/// A finite value; NaN and infinities (however spelled) are a cause of their own.
fn value(field: &[u8]) -> Result<f64, PlaintextError> {
    if let Ok(value) = parse_value(field) {
        return Ok(value);
    }
    if is_non_finite(field) {
        Err(PlaintextError::NonFiniteValue)
    } else {
        Err(PlaintextError::InvalidValue)
    }
}

/// Whether Python's `float()` reads `field` as NaN or an infinity: `nan`,
/// `inf`, `infinity` in any case with an optional sign, or a decimal that
/// overflows (`1e999`).
fn is_non_finite(field: &[u8]) -> bool {
    let unsigned = field
        .strip_prefix(b"+")
        .or_else(|| field.strip_prefix(b"-"))
        .unwrap_or(field);
    let named = [&b"nan"[..], b"inf", b"infinity"]
        .iter()
        .any(|name| unsigned.eq_ignore_ascii_case(name));
    let decimal = field
        .iter()
        .all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    let overflows = || {
        std::str::from_utf8(field)
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .is_some_and(f64::is_infinite)
    };
    named || (decimal && overflows())
}

/// The timestamp as carbon computes it, `int(float(text))`, with `-1` as now.
fn timestamp(field: &[u8]) -> Result<Timestamp, PlaintextError> {
    let seconds = match parse_timestamp(field) {
        Ok(seconds) => seconds,
        Err(_) => {
            let seconds = parse_value(field)
                .map_err(|_| PlaintextError::InvalidTimestamp)?
                .trunc();
            // -2^63 is i64::MIN exactly; 2^63 is the first f64 above i64::MAX.
            let bound = -(i64::MIN as f64);
            if !(-bound..bound).contains(&seconds) {
                return Err(PlaintextError::InvalidTimestamp);
            }
            seconds as i64
        }
    };
    Ok(match seconds {
        -1 => Timestamp::Now,
        t => Timestamp::At(t),
    })
}

/// The lines of one UDP datagram: every `\n`-terminated line, and the last
/// one without its `\n` (agents such as statsd's graphite backend end a
/// datagram's last line or not).
pub fn datagram_lines(datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = datagram.strip_suffix(b"\n").unwrap_or(datagram);
    body.split(|&b| b == b'\n').filter(|_| !datagram.is_empty())
}

/// What the front of a stream holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<'a> {
    /// A point.
    Metric(Metric<'a>),
    /// A line of blanks: nothing to store, nothing to count.
    Blank,
    /// A line that is skipped, with its cause.
    Bad(PlaintextError),
    /// No complete line yet (see [`LineFramer::next`] for the bytes used).
    Incomplete,
}

/// A connection's plaintext decoding state: the course protocol's bounded
/// framer (an over-long line is reported once and skipped through its `\n`)
/// and the line parser.
#[derive(Debug, Clone)]
pub struct PlaintextDecoder {
    framer: LineFramer,
}

impl PlaintextDecoder {
    /// A decoder accepting lines of up to `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        PlaintextDecoder {
            framer: LineFramer::new(max_line),
        }
    }

    /// What the front of `buf` holds, and how many bytes of it were used; the
    /// contract of [`LineFramer::next`] holds for the bytes not used.
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> (Decoded<'a>, usize) {
        let (framed, used) = self.framer.next(buf);
        let decoded = match framed {
            Framed::Line(line) => match parse_line(line) {
                Ok(Some(metric)) => Decoded::Metric(metric),
                Ok(None) => Decoded::Blank,
                Err(cause) => Decoded::Bad(cause),
            },
            Framed::TooLong => Decoded::Bad(PlaintextError::LineTooLong),
            Framed::Incomplete => Decoded::Incomplete,
        };
        (decoded, used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PlaintextError::*;

    fn at(key: &str, value: f64, t: i64) -> Result<Option<Metric<'_>>, PlaintextError> {
        Ok(Some(Metric {
            key: Cow::Borrowed(key),
            value,
            timestamp: Timestamp::At(t),
        }))
    }

    fn now(key: &str, value: f64) -> Result<Option<Metric<'_>>, PlaintextError> {
        Ok(Some(Metric {
            key: Cow::Borrowed(key),
            value,
            timestamp: Timestamp::Now,
        }))
    }

    #[test]
    fn causes_index_their_place_in_all_and_have_distinct_names() {
        for (i, cause) in PlaintextError::ALL.iter().enumerate() {
            assert_eq!(cause.index(), i);
        }
        let mut names: Vec<_> = PlaintextError::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PlaintextError::ALL.len());
    }

    #[test]
    fn fields_are_split_by_runs_of_spaces_and_tabs() {
        assert_eq!(parse_line(b"a.b 1 2"), at("a.b", 1.0, 2));
        assert_eq!(parse_line(b"a.b\t1\t2"), at("a.b", 1.0, 2));
        assert_eq!(parse_line(b"  a.b \t 1\t\t 2 \t"), at("a.b", 1.0, 2));
        assert_eq!(parse_line(b"a.b 1 2\r"), at("a.b", 1.0, 2));
        assert_eq!(parse_line(b"a.b 1 2 \r"), at("a.b", 1.0, 2));
    }

    #[test]
    fn blank_lines_are_nothing() {
        for line in [&b""[..], b" ", b"\t \t", b"\r", b" \r"] {
            assert_eq!(parse_line(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn wrong_field_counts() {
        assert_eq!(parse_line(b"a.b"), Err(WrongFieldCount));
        assert_eq!(parse_line(b"a.b\r"), Err(WrongFieldCount));
        assert_eq!(parse_line(b"a.b 1 2 3"), Err(WrongFieldCount));
        assert_eq!(parse_line(b"put a.b 1 2"), Err(WrongFieldCount));
    }

    #[test]
    fn carriage_returns_other_than_the_last_are_field_bytes() {
        assert_eq!(parse_line(b"a.b 1 2\r\r"), Err(InvalidTimestamp));
        assert_eq!(parse_line(b"a.b\r 1 2"), Err(InvalidKey));
    }

    #[test]
    fn values_as_carbon_reads_them_but_finite() {
        for (text, value) in [
            ("1", 1.0),
            ("-0", -0.0),
            ("+1", 1.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E3", 1000.0),
            ("-1.5e-3", -0.0015),
            ("23.7", 23.7),
            ("1e308", 1e308),
        ] {
            let line = format!("a {text} 10");
            let metric = parse_line(line.as_bytes()).unwrap().unwrap();
            assert_eq!(metric.value, value, "{text}");
            assert_eq!(metric.value.is_sign_negative(), value.is_sign_negative(), "{text}");
        }
    }

    #[test]
    fn non_finite_values_are_their_own_cause() {
        for text in [
            "nan",
            "NaN",
            "-nan",
            "+NAN",
            "inf",
            "-inf",
            "Infinity",
            "-INFINITY",
            "1e999",
            "-1e400",
        ] {
            let line = format!("a {text} 10");
            assert_eq!(parse_line(line.as_bytes()), Err(NonFiniteValue), "{text}");
        }
    }

    #[test]
    fn invalid_values() {
        for text in [
            "x", ".", "1_000", "1,5", "0x10", "1e", "--1", "infinit", "nanx", "١", "1\x00",
        ] {
            let line = format!("a {text} 10");
            assert_eq!(parse_line(line.as_bytes()), Err(InvalidValue), "{text:?}");
        }
        assert_eq!(parse_line(b"a \xff 10"), Err(InvalidValue));
    }

    #[test]
    fn timestamps_are_truncated_and_minus_one_is_now() {
        assert_eq!(parse_line(b"a 1 1150864247.9"), at("a", 1.0, 1150864247));
        assert_eq!(parse_line(b"a 1 1.15e9"), at("a", 1.0, 1150000000));
        assert_eq!(parse_line(b"a 1 -5.5"), at("a", 1.0, -5));
        assert_eq!(parse_line(b"a 1 -0.5"), at("a", 1.0, 0));
        assert_eq!(parse_line(b"a 1 +7"), at("a", 1.0, 7));
        assert_eq!(parse_line(b"a 1 -1"), now("a", 1.0));
        assert_eq!(parse_line(b"a 1 -1.0"), now("a", 1.0));
        assert_eq!(parse_line(b"a 1 -1.9"), now("a", 1.0));
        assert_eq!(parse_line(b"a 1"), now("a", 1.0));
        assert_eq!(parse_line(b"a 1 9223372036854775807"), at("a", 1.0, i64::MAX));
        assert_eq!(parse_line(b"a 1 -9223372036854775808"), at("a", 1.0, i64::MIN));
        assert_eq!(Timestamp::Now.or_now(5), 5);
        assert_eq!(Timestamp::At(3).or_now(5), 3);
    }

    #[test]
    fn invalid_timestamps() {
        for text in [
            "x",
            "nan",
            "inf",
            "-inf",
            "9223372036854775808",
            "9.3e18",
            "-9.3e18",
            "1e999",
            "1_0",
            ".",
        ] {
            let line = format!("a 1 {text}");
            assert_eq!(parse_line(line.as_bytes()), Err(InvalidTimestamp), "{text}");
        }
    }

    #[test]
    fn keys_follow_the_course_protocol() {
        assert_eq!(parse_line("palm.cpu.é 1 2".as_bytes()), at("palm.cpu.é", 1.0, 2));
        assert_eq!(parse_line(b"* 1 2"), Err(InvalidKey));
        assert_eq!(parse_line(b"a\x00b 1 2"), Err(InvalidKey));
        assert_eq!(parse_line(b"a\x7fb 1 2"), Err(InvalidKey));
        assert_eq!(parse_line(b"a\x0bb 1 2"), Err(InvalidKey));
        assert_eq!(parse_line("a\u{a0}b 1 2".as_bytes()), Err(InvalidKey));
        assert_eq!(parse_line("a\u{85}b 1 2".as_bytes()), Err(InvalidKey));
        assert_eq!(parse_line(b"a\xffb 1 2"), Err(InvalidUtf8));
        // A bad key is reported before a bad value.
        assert_eq!(parse_line(b"* x 2"), Err(InvalidKey));
    }

    #[test]
    fn names_lose_leading_tildes() {
        assert_eq!(parse_line(b"~a.b 1 2"), at("a.b", 1.0, 2));
        assert_eq!(parse_line(b"~~a;t=v 1 2"), at("a;t=v", 1.0, 2));
        assert_eq!(parse_line(b"a~ 1 2"), at("a~", 1.0, 2));
        assert_eq!(parse_line(b"~ 1 2"), Err(EmptyName));
        assert_eq!(parse_line(b";t=v 1 2"), Err(EmptyName));
        assert_eq!(parse_line(b"~;t=v 1 2"), Err(EmptyName));
    }

    fn key(path: &str) -> Result<Cow<'_, str>, PlaintextError> {
        canonical_key(path.as_bytes())
    }

    #[test]
    fn canonical_tags_are_borrowed() {
        for path in ["a.b;t=v", "a;a=1;b=2", "a;a-b=y;a=x", "a;t=v=w", "a;t=v~"] {
            assert!(matches!(key(path), Ok(Cow::Borrowed(k)) if k == path), "{path}");
        }
        assert!(matches!(key("plain.key"), Ok(Cow::Borrowed("plain.key"))));
    }

    #[test]
    fn tags_are_sorted_as_graphite_formats_them() {
        let owned = |k: &str| Ok::<Cow<'_, str>, PlaintextError>(Cow::Owned(k.to_string()));
        assert_eq!(key("cpu;host=a;dc=x"), owned("cpu;dc=x;host=a"));
        assert_eq!(key("cpu;z=1;b=2;a=3"), owned("cpu;a=3;b=2;z=1"));
        // graphite sorts the `;tag=value` strings: `-` (0x2d) before `=` (0x3d).
        assert_eq!(key("cpu;a=x;a-b=y"), owned("cpu;a-b=y;a=x"));
        assert_eq!(key("cpu;a-b=y;a=x"), Ok(Cow::Borrowed("cpu;a-b=y;a=x")));
        // A repeated tag keeps its last value; a `name` tag is the metric name.
        assert_eq!(key("cpu;a=1;b=2;a=3"), owned("cpu;a=3;b=2"));
        assert_eq!(key("cpu;a=1;a=0"), owned("cpu;a=0"));
        assert_eq!(key("cpu;a=0;a=1"), owned("cpu;a=1"));
        assert_eq!(key("cpu;name=other;a=1"), owned("cpu;a=1"));
        assert_eq!(key("~cpu;b=1;a=1"), owned("cpu;a=1;b=1"));
        assert_eq!(
            parse_line(b"cpu;host=a;dc=x 1 2").unwrap().unwrap().key,
            "cpu;dc=x;host=a"
        );
    }

    #[test]
    fn invalid_tags() {
        for path in [
            "a;", "a;;t=v", "a;t", "a;=v", "a;t=", "a;t!=v", "a;t^=v", "a;t=~v", "a;t=v;", "a;t=v;u",
        ] {
            assert_eq!(key(path), Err(InvalidTag), "{path}");
        }
    }

    #[test]
    fn datagrams_are_cut_into_lines() {
        let lines = |d: &'static [u8]| datagram_lines(d).collect::<Vec<_>>();
        assert_eq!(lines(b""), Vec::<&[u8]>::new());
        assert_eq!(lines(b"a 1 2"), vec![&b"a 1 2"[..]]);
        assert_eq!(lines(b"a 1 2\n"), vec![&b"a 1 2"[..]]);
        assert_eq!(lines(b"a 1 2\r\nb 3\n"), vec![&b"a 1 2\r"[..], b"b 3"]);
        assert_eq!(lines(b"a 1 2\n\nb 3"), vec![&b"a 1 2"[..], b"", b"b 3"]);
        assert_eq!(lines(b"\n"), vec![&b""[..]]);
    }

    /// Decodes `input` fed in pieces cut at `cuts`, keeping the unused bytes
    /// as a connection does; each item as text for comparison.
    fn decode_in_pieces(max: usize, input: &[u8], cuts: &[usize]) -> Vec<String> {
        let mut decoder = PlaintextDecoder::new(max);
        let (mut pending, mut out, mut start) = (Vec::new(), Vec::new(), 0);
        for end in cuts.iter().copied().chain([input.len()]) {
            pending.extend_from_slice(&input[start..end]);
            start = end;
            loop {
                let (decoded, used) = decoder.next(&pending);
                let item = match decoded {
                    Decoded::Incomplete => None,
                    Decoded::Metric(m) => Some(format!("{} {} {:?}", m.key, m.value, m.timestamp)),
                    other => Some(format!("{other:?}")),
                };
                pending.drain(..used);
                match item {
                    Some(item) => out.push(item),
                    None => break,
                }
            }
        }
        out
    }

    #[test]
    fn a_stream_decodes_the_same_at_every_split_point() {
        let input: &[u8] = b"a.b 1 2\r\n\nc;y=1;x=2\t3\nd nan 1\nthis.line.is.far.too.long 1 2\ne 5 -1\nf";
        let whole = decode_in_pieces(24, input, &[]);
        assert_eq!(
            whole,
            [
                "a.b 1 At(2)",
                "Blank",
                "c;x=2;y=1 3 Now",
                "Bad(NonFiniteValue)",
                "Bad(LineTooLong)",
                "e 5 Now",
            ]
        );
        for i in 0..=input.len() {
            for j in i..=input.len() {
                assert_eq!(decode_in_pieces(24, input, &[i, j]), whole, "split at {i},{j}");
            }
        }
    }

    use proptest::prelude::*;

    proptest! {
        /// Any line is a point with a valid canonical key and a finite
        /// value, a blank, or a cause: never a panic.
        #[test]
        fn any_line_is_a_point_or_a_cause(line in prop::collection::vec(prop::sample::select(
            b" \t\r~;=!^*.ab1-+eE\x00\xff\xc3\xa9nfi".to_vec()), 0..40)) {
            if let Ok(Some(metric)) = parse_line(&line) {
                prop_assert!(is_valid_key(&metric.key) && metric.key != "*");
                prop_assert!(metric.value.is_finite());
                // The canonical form is a fixed point.
                prop_assert_eq!(canonical_key(metric.key.as_bytes()), Ok(Cow::Borrowed(&*metric.key)));
            }
        }
    }
}
