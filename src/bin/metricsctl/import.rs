//! `import`: points read from lines of text, stored in pipelined batches.
//!
//! Input lines are `KEY VALUE TIMESTAMP` (what `get --raw` prints) or
//! `put KEY VALUE TIMESTAMP` (a protocol request), fields separated by
//! spaces or tabs, with an optional `\r` at the end. Blank lines and lines
//! whose first field starts with `#` are skipped (so a key starting with
//! `#` is imported with the `put` form).
//!
//! Points are sent [`BATCH`] at a time with [`Client::put_many`], as the
//! input is read: the input is never held whole, and a large import starts
//! storing at once. The price is that the input is not all checked before
//! anything is stored, so the rule is simple instead: **the import stops at
//! the first line that is not a point, after storing every point before
//! it, and sends nothing after it.** Fix the line and import the rest (or
//! all of it again: a point put twice is stored once).

use crate::fields;
use metricsd::{Client, ClientError};
use std::io::{self, BufRead, Read};
use std::time::Duration;

/// Points per `put_many` call: one pipelined window of the client's, so
/// one round trip and one timeout each.
pub const BATCH: usize = 4096;

/// The longest input line: metricsd's default `--max-line-bytes`. A longer
/// one cannot be a request the server takes, and the bound keeps memory
/// bounded whatever the input.
const MAX_LINE_BYTES: usize = 65_536;

/// Why an import stopped early.
#[derive(Debug)]
pub enum Stop {
    /// A line that is not a point.
    BadLine { line: u64, cause: String },
    /// Reading the input failed at this line.
    Input { line: u64, cause: io::Error },
    /// Storing the points of lines `first..=last` failed: none, some or all
    /// of them may be stored.
    Store { first: u64, last: u64, cause: ClientError },
}

/// An import that stopped early, and how many points it stored before.
#[derive(Debug)]
pub struct Failure {
    pub stop: Stop,
    /// Points stored before the line or batch that stopped it.
    pub stored: u64,
}

/// Stores every point of `input`; returns how many there were.
pub fn import(client: &mut Client, mut input: impl BufRead) -> Result<u64, Failure> {
    let mut batch = Batch::default();
    let mut stored = 0;
    let mut line = Vec::new();
    let mut number = 0;
    let mut warned = false;
    let stop = loop {
        number += 1;
        match read_line(&mut input, &mut line) {
            Ok(LineRead::End) => break None,
            Ok(LineRead::TooLong) => {
                break Some(Stop::BadLine {
                    line: number,
                    cause: format!("longer than {MAX_LINE_BYTES} bytes"),
                })
            }
            Ok(LineRead::Line) => {}
            Err(cause) => break Some(Stop::Input { line: number, cause }),
        }
        match parse(&line) {
            Ok(None) => {}
            Ok(Some(point)) => {
                if !warned {
                    if let Some(warning) = fields::milliseconds_warning(point.2) {
                        eprintln!("metricsctl: line {number}: {warning}; imported as given (later lines like it are not reported)");
                        warned = true;
                    }
                }
                batch.push(number, point);
                if batch.points.len() == BATCH {
                    stored += batch.send(client, stored)?;
                }
            }
            Err(cause) => break Some(Stop::BadLine { line: number, cause }),
        }
    };
    // Whatever stopped the import, the points before it are stored.
    stored += batch.send(client, stored)?;
    match stop {
        None => Ok(stored),
        Some(stop) => Err(Failure { stop, stored }),
    }
}

/// `imported N points in S s (R/s)`.
pub fn summary(points: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let mut text = format!("imported {} in {seconds:.2} s", crate::series::points(points));
    if seconds > 0.0 {
        text.push_str(&format!(" ({:.0}/s)", points as f64 / seconds));
    }
    text
}

/// Points read but not yet sent, and the lines they came from.
#[derive(Default)]
struct Batch {
    points: Vec<(String, f64, Option<i64>)>,
    first_line: u64,
    last_line: u64,
}

impl Batch {
    fn push(&mut self, line: u64, (key, value, timestamp): (String, f64, i64)) {
        if self.points.is_empty() {
            self.first_line = line;
        }
        self.last_line = line;
        self.points.push((key, value, Some(timestamp)));
    }

    /// Stores the batch and empties it; returns how many points it held.
    /// `stored` is what earlier batches stored, for the failure.
    fn send(&mut self, client: &mut Client, stored: u64) -> Result<u64, Failure> {
        if self.points.is_empty() {
            return Ok(0);
        }
        client.put_many(&self.points).map_err(|cause| Failure {
            stop: Stop::Store {
                first: self.first_line,
                last: self.last_line,
                cause,
            },
            stored,
        })?;
        let sent = self.points.len() as u64;
        self.points.clear();
        Ok(sent)
    }
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq)]
enum LineRead {
    /// A line, in the buffer without its `\n`.
    Line,
    /// A line longer than [`MAX_LINE_BYTES`].
    TooLong,
    /// The end of the input.
    End,
}

/// Reads the next line into `line` (cleared first), reading no more than
/// [`MAX_LINE_BYTES`] and its `\n`.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<LineRead> {
    line.clear();
    let limit = MAX_LINE_BYTES as u64 + 1;
    if (&mut *input).take(limit).read_until(b'\n', line)? == 0 {
        return Ok(LineRead::End);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        Ok(LineRead::Line)
    } else if line.len() > MAX_LINE_BYTES {
        Ok(LineRead::TooLong)
    } else {
        // The last line, without a `\n`.
        Ok(LineRead::Line)
    }
}

/// The point on one line (without its `\n`); None for a blank or comment
/// line.
fn parse(line: &[u8]) -> Result<Option<(String, f64, i64)>, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| "not valid UTF-8".to_owned())?;
    let fields: Vec<&str> = text.split([' ', '\t']).filter(|f| !f.is_empty()).collect();
    let (key, value, timestamp) = match fields[..] {
        [] => return Ok(None),
        [first, ..] if first.starts_with('#') => return Ok(None),
        // `put k 1` is the key `put` with the value `k`, unless told apart.
        ["put", value, _] if fields::value(value).is_err() => {
            return Err("a put line is put KEY VALUE TIMESTAMP; this one lacks a field".to_owned())
        }
        ["put", key, value, timestamp] | [key, value, timestamp] => (key, value, timestamp),
        _ => {
            return Err(format!(
                "expected KEY VALUE TIMESTAMP or put KEY VALUE TIMESTAMP, not {} fields",
                fields.len()
            ))
        }
    };
    Ok(Some((
        fields::put_key(key)?.to_owned(),
        fields::value(value)?,
        fields::timestamp(timestamp)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(key: &str, value: f64, ts: i64) -> Result<Option<(String, f64, i64)>, String> {
        Ok(Some((key.to_owned(), value, ts)))
    }

    #[test]
    fn both_line_forms_blanks_and_comments() {
        assert_eq!(parse(b"palm.cpu 2.0 1150864247"), point("palm.cpu", 2.0, 1150864247));
        assert_eq!(
            parse(b"put palm.cpu 2.0 1150864247"),
            point("palm.cpu", 2.0, 1150864247)
        );
        assert_eq!(parse(b"\t k  -1e3\t-5 \r"), point("k", -1000.0, -5));
        assert_eq!(parse(b"put 1 2"), point("put", 1.0, 2));
        assert_eq!(parse(b"put put 1 2"), point("put", 1.0, 2));
        assert_eq!(parse("put #ж 1 2".as_bytes()), point("#ж", 1.0, 2));
        for skipped in [&b""[..], b"   ", b"\t\r", b"# a comment", b"  #k 1 2", b"#"] {
            assert_eq!(parse(skipped), Ok(None), "{:?}", String::from_utf8_lossy(skipped));
        }
    }

    #[test]
    fn bad_lines_say_why() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"k 1",
                "expected KEY VALUE TIMESTAMP or put KEY VALUE TIMESTAMP, not 2 fields",
            ),
            (
                b"k 1 2 # note",
                "expected KEY VALUE TIMESTAMP or put KEY VALUE TIMESTAMP, not 5 fields",
            ),
            (
                b"get k 1 2",
                "expected KEY VALUE TIMESTAMP or put KEY VALUE TIMESTAMP, not 4 fields",
            ),
            (
                b"put k 1",
                "a put line is put KEY VALUE TIMESTAMP; this one lacks a field",
            ),
            (b"k abc 1", r#"invalid value "abc": not a finite decimal number"#),
            (b"k inf 1", r#"invalid value "inf": not a finite decimal number"#),
            (b"k 1 1.5", r#"invalid timestamp "1.5": not a whole number of seconds"#),
            (b"* 1 2", "'*' is not a key to put: it means every key in get"),
            (
                "a\u{a0}b 1 2".as_bytes(),
                r#"invalid key "a\u{a0}b": a key is one or more characters, none of them whitespace or control"#,
            ),
            (
                b"k\x00 1 2",
                r#"invalid key "k\0": a key is one or more characters, none of them whitespace or control"#,
            ),
            (b"\xff 1 2", "not valid UTF-8"),
        ];
        for (line, message) in cases {
            assert_eq!(
                parse(line),
                Err(message.to_string()),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn lines_are_read_up_to_the_limit() {
        let long = "k".repeat(MAX_LINE_BYTES);
        let input = format!("a 1 2\r\n{long}\n{long}k\nlast 1 2");
        let mut input = input.as_bytes();
        let mut line = Vec::new();
        assert_eq!(read_line(&mut input, &mut line).unwrap(), LineRead::Line);
        assert_eq!(line, b"a 1 2\r");
        assert_eq!(read_line(&mut input, &mut line).unwrap(), LineRead::Line);
        assert_eq!(line.len(), MAX_LINE_BYTES);
        assert_eq!(read_line(&mut input, &mut line).unwrap(), LineRead::TooLong);
    }

    #[test]
    fn the_last_line_needs_no_newline() {
        let mut input = &b"a 1 2\nlast 1 2"[..];
        let mut line = Vec::new();
        assert_eq!(read_line(&mut input, &mut line).unwrap(), LineRead::Line);
        assert_eq!(read_line(&mut input, &mut line).unwrap(), LineRead::Line);
        assert_eq!(line, b"last 1 2");
        assert_eq!(read_line(&mut input, &mut line).unwrap(), LineRead::End);
    }

    #[test]
    fn summaries() {
        assert_eq!(
            summary(5000, Duration::from_millis(250)),
            "imported 5000 points in 0.25 s (20000/s)"
        );
        assert_eq!(summary(0, Duration::ZERO), "imported 0 points in 0.00 s");
        assert_eq!(
            summary(1, Duration::from_millis(500)),
            "imported 1 point in 0.50 s (2/s)"
        );
    }
}
