//! The workload in Redis's terms (`--server redis`), so that one client, one
//! event loop and one set of checks measure both servers.
//!
//! A series is a Redis list named by its key, and a point is one element,
//! the text `<value> <timestamp>` exactly as metricsd writes it in a data
//! line:
//!
//! - put is `RPUSH key "<value> <timestamp>"`, answered `:<length>`. Issue
//!   12 named SET; but SET either stores nothing new (the same key again) or
//!   makes a new top-level key per point (a new key each time), where a put
//!   appends a point to an existing series. RPUSH is the same act as a put,
//!   and it leaves in the list what LRANGE then reads.
//! - get is `LRANGE key 0 -1`, every element of the list, as `get key` is
//!   every point of the series. Its answer is an array of bulk strings of
//!   about the size of metricsd's (`$6\r\n0.25 1\r\n` where metricsd writes
//!   `bench.k7 0.25 1\n`).
//! - the preload is `DEL key` then one `RPUSH key` of the `P` points: the
//!   list then holds exactly those points, as a preloaded metricsd series
//!   does (a put of a timestamp already stored replaces its value there).
//!
//! Answers are checked as strictly as in the metricsd mode: a get-only run
//! demands the preloaded list byte for byte; a put, an integer no smaller
//! than the list had before; an error reply (`-ERR ...`) is counted and the
//! run goes on; anything else stops the run.

use crate::resp::{parse_reply, write_array_header, write_bulk, write_bulk_with, Reply};
use crate::workload::Verdict;
use metricsd::protocol::number::{write_timestamp, write_value};

/// Appends the text of a point as a list element: `<value> <timestamp>`.
fn write_element(out: &mut Vec<u8>, value: f64, timestamp: i64) {
    write_value(out, value);
    out.push(b' ');
    write_timestamp(out, timestamp);
}

/// Appends `RPUSH key "<value> <timestamp>"`.
#[inline]
pub fn encode_put(out: &mut Vec<u8>, key: &str, value: f64, timestamp: i64) {
    write_array_header(out, 3);
    write_bulk(out, b"RPUSH");
    write_bulk(out, key.as_bytes());
    write_bulk_with(out, |out| write_element(out, value, timestamp));
}

/// Appends `LRANGE key 0 -1`.
#[inline]
pub fn encode_get(out: &mut Vec<u8>, key: &str) {
    write_array_header(out, 4);
    write_bulk(out, b"LRANGE");
    write_bulk(out, key.as_bytes());
    out.extend_from_slice(b"$1\r\n0\r\n$2\r\n-1\r\n");
}

/// Appends the preload of one key: `DEL key`, then `RPUSH key` of every
/// point unless there are none. Returns the replies to expect, in order.
pub fn encode_preload(out: &mut Vec<u8>, key: &str, points: &[(f64, i64)]) -> &'static [PreloadReply] {
    write_array_header(out, 2);
    write_bulk(out, b"DEL");
    write_bulk(out, key.as_bytes());
    if points.is_empty() {
        return &[PreloadReply::Deleted];
    }
    write_array_header(out, 2 + points.len());
    write_bulk(out, b"RPUSH");
    write_bulk(out, key.as_bytes());
    for &(value, timestamp) in points {
        write_bulk_with(out, |out| write_element(out, value, timestamp));
    }
    &[PreloadReply::Deleted, PreloadReply::Pushed]
}

/// What a Redis run stores before it starts.
#[derive(Debug)]
pub struct Preload<'a> {
    pub keys: &'a [String],
    /// The points of every key: (value, timestamp).
    pub points: Vec<(f64, i64)>,
    pub expected: &'a Expected,
}

/// What a preload command is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreloadReply {
    /// `DEL`: the number of keys removed, 0 or 1.
    Deleted,
    /// `RPUSH` into an empty list: its length, every point.
    Pushed,
}

/// `RPUSH key "<value> <timestamp>"`, for messages.
pub fn describe_put(key: &str, value: f64, timestamp: i64) -> String {
    let mut element = Vec::new();
    write_element(&mut element, value, timestamp);
    format!("RPUSH {key} \"{}\"", String::from_utf8_lossy(&element))
}

/// `LRANGE key 0 -1`, for messages.
pub fn describe_get(key: &str) -> String {
    format!("LRANGE {key} 0 -1")
}

/// The answers a Redis run expects.
#[derive(Debug)]
pub struct Expected {
    /// Points preloaded under each key.
    preloaded: usize,
    /// The reply to LRANGE of a preloaded list: the same for every key,
    /// since an element does not name its key.
    lrange: Vec<u8>,
    /// The preloaded elements, for saying which one differs.
    elements: Vec<Vec<u8>>,
}

impl Expected {
    /// The answers to expect after `points` were preloaded under every key.
    pub fn new(points: &[(f64, i64)]) -> Expected {
        let elements: Vec<Vec<u8>> = points
            .iter()
            .map(|&(value, timestamp)| {
                let mut element = Vec::new();
                write_element(&mut element, value, timestamp);
                element
            })
            .collect();
        let mut lrange = Vec::new();
        write_array_header(&mut lrange, elements.len());
        for element in &elements {
            write_bulk(&mut lrange, element);
        }
        Expected {
            preloaded: points.len(),
            lrange,
            elements,
        }
    }

    /// Judges the reply to a put (RPUSH): the list's new length, at least
    /// one more than the preloaded points.
    pub fn check_put(&self, answer: &[u8]) -> Result<Verdict, String> {
        match parse(answer)? {
            Reply::Error(_) => Ok(Verdict::Error),
            Reply::Integer(n) if usize::try_from(n).is_ok_and(|n| n > self.preloaded) => Ok(Verdict::Ok),
            Reply::Integer(n) => Err(format!(
                "a list of {n} elements after a push to one of {} preloaded",
                self.preloaded
            )),
            other => Err(format!("{} where an integer was expected", kind(&other))),
        }
    }

    /// Judges the reply to a get (LRANGE). `exact`: the list must be the
    /// preloaded points byte for byte (a get-only run); else it holds at
    /// least that many elements, all strings (puts add to it meanwhile).
    pub fn check_get(&self, answer: &[u8], exact: bool) -> Result<Verdict, String> {
        if exact && answer == self.lrange {
            return Ok(Verdict::Ok);
        }
        let elements = match parse(answer)? {
            Reply::Error(_) => return Ok(Verdict::Error),
            Reply::Array(Some(elements)) => elements,
            other => return Err(format!("{} where an array was expected", kind(&other))),
        };
        let count = elements.announced();
        if count < self.preloaded as u64 || (exact && count != self.preloaded as u64) {
            let least = if exact { "" } else { "at least " };
            return Err(format!("{count} points where {least}{} were stored", self.preloaded));
        }
        for (n, element) in elements.enumerate() {
            match element.map_err(|e| e.to_string())? {
                Reply::Bulk(Some(text)) => {
                    if let Some(stored) = self.elements.get(n).filter(|stored| exact && *stored != text) {
                        return Err(format!(
                            "point {} is {:?} where {:?} was stored",
                            n + 1,
                            String::from_utf8_lossy(text),
                            String::from_utf8_lossy(stored)
                        ));
                    }
                }
                other => return Err(format!("element {} is {}, not a string", n + 1, kind(&other))),
            }
        }
        Ok(Verdict::Ok)
    }

    /// Judges the reply to a preload command.
    pub fn check_preload(&self, expected: PreloadReply, answer: &[u8]) -> Result<(), String> {
        match (expected, parse(answer)?) {
            (PreloadReply::Deleted, Reply::Integer(0 | 1)) => Ok(()),
            (PreloadReply::Pushed, Reply::Integer(n)) if usize::try_from(n) == Ok(self.preloaded) => Ok(()),
            (PreloadReply::Deleted, other) => Err(format!("DEL answered {}", describe_reply(&other))),
            (PreloadReply::Pushed, other) => Err(format!(
                "RPUSH of {} points answered {}",
                self.preloaded,
                describe_reply(&other)
            )),
        }
    }
}

fn parse(answer: &[u8]) -> Result<Reply<'_>, String> {
    parse_reply(answer).map_err(|e| e.to_string())
}

/// A reply's type, for messages.
fn kind(reply: &Reply) -> &'static str {
    match reply {
        Reply::Simple(_) => "a simple string",
        Reply::Error(_) => "an error",
        Reply::Integer(_) => "an integer",
        Reply::Bulk(Some(_)) => "a bulk string",
        Reply::Bulk(None) | Reply::Array(None) => "nil",
        Reply::Array(Some(_)) => "an array",
    }
}

/// A scalar reply's value, or its type.
fn describe_reply(reply: &Reply) -> String {
    match reply {
        Reply::Integer(n) => n.to_string(),
        Reply::Error(text) | Reply::Simple(text) => format!("{:?}", String::from_utf8_lossy(text)),
        other => kind(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTS: [(f64, i64); 3] = [(0.25, 1), (0.5, 2), (0.75, 3)];

    #[test]
    fn requests_are_rpush_and_lrange() {
        let mut out = Vec::new();
        encode_put(&mut out, "bench.k7", 0.5, 1_600_000_003);
        encode_get(&mut out, "bench.k7");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "*3\r\n$5\r\nRPUSH\r\n$8\r\nbench.k7\r\n$14\r\n0.5 1600000003\r\n\
             *4\r\n$6\r\nLRANGE\r\n$8\r\nbench.k7\r\n$1\r\n0\r\n$2\r\n-1\r\n"
        );
        assert_eq!(describe_put("k", 2.0, 5), "RPUSH k \"2.0 5\"");
        assert_eq!(describe_get("k"), "LRANGE k 0 -1");
    }

    #[test]
    fn preload_replaces_the_list() {
        let mut out = Vec::new();
        assert_eq!(
            encode_preload(&mut out, "k", &POINTS[..2]),
            [PreloadReply::Deleted, PreloadReply::Pushed]
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*4\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$6\r\n0.25 1\r\n$5\r\n0.5 2\r\n"
        );
        let mut out = Vec::new();
        assert_eq!(encode_preload(&mut out, "k", &[]), [PreloadReply::Deleted]);
        let expected = Expected::new(&POINTS);
        assert_eq!(expected.check_preload(PreloadReply::Deleted, b":1\r\n"), Ok(()));
        assert_eq!(expected.check_preload(PreloadReply::Pushed, b":3\r\n"), Ok(()));
        assert_eq!(
            expected.check_preload(PreloadReply::Pushed, b":4\r\n"),
            Err("RPUSH of 3 points answered 4".into())
        );
        assert_eq!(
            expected.check_preload(PreloadReply::Deleted, b"-WRONGTYPE x\r\n"),
            Err("DEL answered \"WRONGTYPE x\"".into())
        );
    }

    #[test]
    fn put_replies() {
        let expected = Expected::new(&POINTS);
        assert_eq!(expected.check_put(b":4\r\n"), Ok(Verdict::Ok));
        assert_eq!(expected.check_put(b":1000\r\n"), Ok(Verdict::Ok));
        assert_eq!(expected.check_put(b"-ERR oom\r\n"), Ok(Verdict::Error));
        assert!(expected.check_put(b":3\r\n").unwrap_err().contains("3 elements"));
        assert!(expected.check_put(b"+OK\r\n").unwrap_err().contains("a simple string"));
        assert!(expected.check_put(b"ok\n\n").unwrap_err().contains("type byte 'o'"));
        assert_eq!(Expected::new(&[]).check_put(b":1\r\n"), Ok(Verdict::Ok));
        assert!(Expected::new(&[]).check_put(b":0\r\n").is_err());
    }

    #[test]
    fn get_replies_must_be_the_preloaded_points() {
        let expected = Expected::new(&POINTS);
        let good = b"*3\r\n$6\r\n0.25 1\r\n$5\r\n0.5 2\r\n$6\r\n0.75 3\r\n";
        assert_eq!(expected.check_get(good, true), Ok(Verdict::Ok));
        assert_eq!(expected.check_get(b"-ERR x\r\n", true), Ok(Verdict::Error));
        assert_eq!(
            expected.check_get(b"*3\r\n$6\r\n0.25 1\r\n$5\r\n0.5 2\r\n$6\r\n0.70 3\r\n", true),
            Err("point 3 is \"0.70 3\" where \"0.75 3\" was stored".into())
        );
        assert_eq!(
            expected.check_get(b"*2\r\n$6\r\n0.25 1\r\n$5\r\n0.5 2\r\n", true),
            Err("2 points where 3 were stored".into())
        );
        let four = b"*4\r\n$6\r\n0.25 1\r\n$5\r\n0.5 2\r\n$6\r\n0.75 3\r\n$3\r\n1 9\r\n";
        assert_eq!(
            expected.check_get(four, true),
            Err("4 points where 3 were stored".into())
        );
        assert!(expected.check_get(b"*-1\r\n", true).unwrap_err().contains("nil"));
        // With nothing preloaded, only the empty array is right.
        assert_eq!(Expected::new(&[]).check_get(b"*0\r\n", true), Ok(Verdict::Ok));
    }

    #[test]
    fn mixed_get_replies_need_the_preloaded_count_of_strings() {
        let expected = Expected::new(&POINTS);
        let four = b"*4\r\n$6\r\n0.25 1\r\n$5\r\n0.5 2\r\n$6\r\n0.75 3\r\n$3\r\n1 9\r\n";
        assert_eq!(expected.check_get(four, false), Ok(Verdict::Ok));
        assert_eq!(
            expected.check_get(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", false),
            Err("2 points where at least 3 were stored".into())
        );
        assert_eq!(
            expected.check_get(b"*3\r\n$1\r\na\r\n:5\r\n$1\r\nb\r\n", false),
            Err("element 2 is an integer, not a string".into())
        );
    }
}
