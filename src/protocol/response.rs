//! Responses: encoding them (server) and checking then parsing them (clients).
//!
//! Every response is a status line, optional data lines and an empty line.
//! Status and data lines are never empty, so a response ends at the first
//! `\n\n` after its start: [`ResponseScanner::check`] finds that end
//! incrementally, and [`parse_response`] interprets the bytes up to it.

use super::number::{parse_timestamp, parse_value, write_fields};
use memchr::{memchr, memmem};

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
    write_fields(out, value, timestamp);
}

/// Ends an answer started with [`begin_ok`].
#[inline]
pub fn end(out: &mut Vec<u8>) {
    out.push(b'\n');
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
    use proptest::prelude::*;

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
