//! RESP2, the Redis serialization protocol, as far as the tool speaks it:
//! commands are encoded as arrays of bulk strings, and replies are cut from
//! a byte stream ([`RespScanner`]) and read ([`parse_reply`]), with no I/O.
//!
//! A reply is one value: `+text\r\n` (simple string), `-text\r\n` (error),
//! `:n\r\n` (integer), `$len\r\n<len bytes>\r\n` or `$-1\r\n` (bulk string
//! or nil), `*count\r\n` then `count` values, or `*-1\r\n` (array or nil).
//! See <https://redis.io/docs/latest/develop/reference/protocol-spec/>.

use memchr::memchr;

/// Longest header line taken for a length or an integer: `-`, 19 digits of
/// an i64 and `\r\n`, with room to spare. A longer one is malformed rather
/// than a reason to buffer without bound.
const MAX_NUMBER_LINE: usize = 32;

/// Why bytes are not a RESP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("unknown RESP type byte {0:?}")]
    UnknownType(char),
    #[error("a RESP line not ended by \\r\\n")]
    NoCrlf,
    #[error("a RESP length or integer that is not a number")]
    BadNumber,
    #[error("a RESP bulk string not ended by \\r\\n")]
    BulkNotTerminated,
    #[error("a RESP array holding more values than can be counted")]
    TooManyValues,
    #[error("bytes after a whole RESP reply")]
    Trailing,
}

/// Appends the header of a command of `args` arguments; each argument
/// follows as a bulk string.
#[inline]
pub fn write_array_header(out: &mut Vec<u8>, args: usize) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `bytes` as a bulk string.
#[inline]
pub fn write_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    write_bulk_header(out, bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends as a bulk string the bytes that `write` appends. The text is
/// written first and its `$len\r\n` turned in front of it, so that no
/// scratch buffer is needed to learn its length.
#[inline]
pub fn write_bulk_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    write(out);
    let len = out.len() - start;
    write_bulk_header(out, len);
    let header = out.len() - start - len;
    out[start..].rotate_right(header);
    out.extend_from_slice(b"\r\n");
}

fn write_bulk_header(out: &mut Vec<u8>, len: usize) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Finds where whole replies end in a stream, resuming where it stopped
/// when a reply is still incomplete, so that a reply arriving in many reads
/// is scanned once.
#[derive(Debug, Clone)]
pub struct RespScanner {
    /// Bytes of the current reply already taken.
    pos: usize,
    /// Values still to take before the reply is whole: the reply itself,
    /// then every element of the arrays opened so far.
    left: u64,
}

impl Default for RespScanner {
    fn default() -> Self {
        RespScanner { pos: 0, left: 1 }
    }
}

impl RespScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The length of the first whole reply at the front of `buf`, or `None`
    /// if more bytes are needed, or why `buf` cannot begin with a reply.
    /// After `None`, call again with the same bytes first and more appended;
    /// after `Some(n)`, with `buf[n..]` first.
    pub fn check(&mut self, buf: &[u8]) -> Result<Option<usize>, RespError> {
        while self.left > 0 {
            let Some((value, next)) = value_header(buf, self.pos)? else {
                return Ok(None);
            };
            self.left -= 1;
            if let Header::Array(Some(count)) = value {
                self.left = self.left.checked_add(count).ok_or(RespError::TooManyValues)?;
            }
            self.pos = next;
        }
        let len = self.pos;
        *self = RespScanner::default();
        Ok(Some(len))
    }
}

/// A value's first part: the whole of a scalar, the count of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Integer(i64),
    Bulk(Option<&'a [u8]>),
    Array(Option<u64>),
}

/// The value header that starts at `buf[pos]` and where what follows it
/// starts, or `None` if `buf` ends first.
fn value_header(buf: &[u8], pos: usize) -> Result<Option<(Header<'_>, usize)>, RespError> {
    let Some(&kind) = buf.get(pos) else { return Ok(None) };
    if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
        return Err(RespError::UnknownType(char::from(kind)));
    }
    let numeric = matches!(kind, b':' | b'$' | b'*');
    let Some(line) = line_at(buf, pos + 1, numeric)? else {
        return Ok(None);
    };
    let next = pos + 1 + line.len() + 2;
    let header = match kind {
        b'+' => Header::Simple(line),
        b'-' => Header::Error(line),
        b':' => Header::Integer(number(line)?),
        b'*' => Header::Array(length(line)?),
        _ => match length(line)? {
            None => Header::Bulk(None),
            Some(len) => {
                // The length is at most what a line of MAX_NUMBER_LINE holds:
                // it fits a usize on 64-bit targets; elsewhere, saturate.
                let end = usize::try_from(len).unwrap_or(usize::MAX).saturating_add(next);
                let Some(tail) = buf.get(end..end.saturating_add(2)) else {
                    return Ok(None);
                };
                if tail != b"\r\n" {
                    return Err(RespError::BulkNotTerminated);
                }
                return Ok(Some((Header::Bulk(Some(&buf[next..end])), end + 2)));
            }
        },
    };
    Ok(Some((header, next)))
}

/// The line from `buf[from]` to its `\r\n` (excluded), or `None` if the
/// line has not ended yet. A numeric line is bounded by `MAX_NUMBER_LINE`.
fn line_at(buf: &[u8], from: usize, numeric: bool) -> Result<Option<&[u8]>, RespError> {
    let rest = &buf[from.min(buf.len())..];
    let window = if numeric {
        &rest[..rest.len().min(MAX_NUMBER_LINE)]
    } else {
        rest
    };
    match memchr(b'\n', window) {
        Some(end) if end > 0 && rest[end - 1] == b'\r' => Ok(Some(&rest[..end - 1])),
        Some(_) => Err(RespError::NoCrlf),
        None if numeric && window.len() == MAX_NUMBER_LINE => Err(RespError::BadNumber),
        None => Ok(None),
    }
}

/// An integer as RESP writes it: an optional `-`, then decimal digits.
fn number(line: &[u8]) -> Result<i64, RespError> {
    let digits = line.strip_prefix(b"-").unwrap_or(line);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadNumber);
    }
    // Digits only, so UTF-8; the parse refuses what overflows an i64.
    std::str::from_utf8(line)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(RespError::BadNumber)
}

/// A bulk or array length: `-1` for nil, else at least 0.
fn length(line: &[u8]) -> Result<Option<u64>, RespError> {
    match number(line)? {
        -1 => Ok(None),
        n => u64::try_from(n).map(Some).map_err(|_| RespError::BadNumber),
    }
}

/// One reply, or one element of an array reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Integer(i64),
    /// A bulk string, or nil (`$-1`).
    Bulk(Option<&'a [u8]>),
    /// An array, or nil (`*-1`).
    Array(Option<Elements<'a>>),
}

/// The elements of an array reply, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elements<'a> {
    rest: &'a [u8],
    left: u64,
}

impl Elements<'_> {
    /// The element count the array announced.
    pub fn announced(&self) -> u64 {
        self.left
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Reply<'a>, RespError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // An element is itself a whole value: the scanner finds its end,
        // nested arrays included.
        let item = match RespScanner::new().check(self.rest) {
            Ok(Some(len)) => {
                let (element, rest) = self.rest.split_at(len);
                self.rest = rest;
                parse_reply(element)
            }
            // parse_reply scanned the whole array first: cannot happen.
            Ok(None) => Err(RespError::BadNumber),
            Err(e) => Err(e),
        };
        if item.is_err() {
            self.left = 0;
        }
        Some(item)
    }
}

/// Reads one whole reply, as cut by [`RespScanner::check`].
pub fn parse_reply(reply: &[u8]) -> Result<Reply<'_>, RespError> {
    if RespScanner::new().check(reply)? != Some(reply.len()) {
        return Err(RespError::Trailing);
    }
    // Whole, so the header is there.
    let Some((header, next)) = value_header(reply, 0)? else {
        return Err(RespError::BadNumber);
    };
    Ok(match header {
        Header::Simple(text) => Reply::Simple(text),
        Header::Error(text) => Reply::Error(text),
        Header::Integer(n) => Reply::Integer(n),
        Header::Bulk(bytes) => Reply::Bulk(bytes),
        Header::Array(count) => Reply::Array(count.map(|left| Elements {
            rest: &reply[next..],
            left,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replies of every type, nested, empty and nil ones among them.
    const REPLIES: &[&[u8]] = &[
        b"+OK\r\n",
        b"-ERR wrong number of arguments for 'rpush' command\r\n",
        b":0\r\n",
        b":-12\r\n",
        b":9223372036854775807\r\n",
        b"$0\r\n\r\n",
        b"$-1\r\n",
        b"$6\r\n0.25 1\r\n",
        b"$4\r\na\r\nb\r\n",
        b"*0\r\n",
        b"*-1\r\n",
        b"*2\r\n$6\r\n0.25 1\r\n$5\r\n0.5 2\r\n",
        b"*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n*0\r\n",
    ];

    /// Cuts `stream` with a scanner fed in the pieces `cuts` makes, as a
    /// connection feeds it: whole replies are taken off the front.
    fn scan_in_pieces(stream: &[u8], cuts: &[usize]) -> Result<Vec<Vec<u8>>, RespError> {
        let mut scanner = RespScanner::new();
        let (mut input, mut replies) = (Vec::new(), Vec::new());
        let mut from = 0;
        for &to in cuts.iter().chain([&stream.len()]) {
            input.extend_from_slice(&stream[from..to]);
            from = to;
            while let Some(len) = scanner.check(&input)? {
                replies.push(input.drain(..len).collect());
            }
        }
        assert!(input.is_empty(), "left over: {input:?}");
        Ok(replies)
    }

    #[test]
    fn every_reply_split_at_every_byte() {
        let stream = REPLIES.concat();
        for cut in 0..=stream.len() {
            let got = scan_in_pieces(&stream, &[cut]).unwrap();
            assert_eq!(got, REPLIES, "cut at {cut}");
        }
        // And a byte at a time.
        let every: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(scan_in_pieces(&stream, &every).unwrap(), REPLIES);
    }

    #[test]
    fn incomplete_replies_wait_for_more() {
        for reply in REPLIES {
            for len in 0..reply.len() {
                assert_eq!(RespScanner::new().check(&reply[..len]), Ok(None), "{reply:?}[..{len}]");
            }
        }
    }

    #[test]
    fn malformed_replies_are_refused_wherever_they_are_cut() {
        for (bad, error) in [
            (&b"ok\n\n"[..], RespError::UnknownType('o')),
            (b"HTTP/1.1 400\r\n", RespError::UnknownType('H')),
            (b"+OK\n", RespError::NoCrlf),
            (b":12x\r\n", RespError::BadNumber),
            (b":\r\n", RespError::BadNumber),
            (b":99999999999999999999\r\n", RespError::BadNumber),
            (b":1111111111111111111111111111111111111111", RespError::BadNumber),
            (b"$-2\r\n", RespError::BadNumber),
            (b"$3\r\nabcd\r\n", RespError::BulkNotTerminated),
            (b"*-5\r\n", RespError::BadNumber),
            (b"*2\r\n:1\r\n%3\r\n", RespError::UnknownType('%')),
        ] {
            assert_eq!(RespScanner::new().check(bad), Err(error.clone()), "{bad:?}");
            // Fed in two pieces, the same error once the bad byte is in.
            for cut in 0..bad.len() {
                let mut scanner = RespScanner::new();
                let first = scanner.check(&bad[..cut]);
                assert!(matches!(first, Ok(None) | Err(_)), "{bad:?} cut at {cut}");
                if first.is_ok() {
                    assert_eq!(scanner.check(bad), Err(error.clone()), "{bad:?} cut at {cut}");
                }
            }
        }
        // Arrays whose counts overflow the values still to take.
        let max = format!("*{}\r\n", i64::MAX);
        let nested = format!("*2\r\n{max}{max}");
        assert_eq!(RespScanner::new().check(nested.as_bytes()), Ok(None));
        assert_eq!(
            RespScanner::new().check(format!("{nested}{max}").as_bytes()),
            Err(RespError::TooManyValues)
        );
    }

    #[test]
    fn replies_parse_to_their_values() {
        assert_eq!(parse_reply(b"+OK\r\n"), Ok(Reply::Simple(b"OK")));
        assert_eq!(parse_reply(b"-ERR no\r\n"), Ok(Reply::Error(b"ERR no")));
        assert_eq!(parse_reply(b":-12\r\n"), Ok(Reply::Integer(-12)));
        assert_eq!(parse_reply(b"$-1\r\n"), Ok(Reply::Bulk(None)));
        assert_eq!(parse_reply(b"$4\r\na\r\nb\r\n"), Ok(Reply::Bulk(Some(b"a\r\nb"))));
        assert_eq!(parse_reply(b"*-1\r\n"), Ok(Reply::Array(None)));
        let Ok(Reply::Array(Some(elements))) = parse_reply(b"*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n$1\r\nx\r\n") else {
            panic!("an array")
        };
        assert_eq!(elements.announced(), 3);
        let items: Vec<_> = elements.collect::<Result<_, _>>().unwrap();
        assert_eq!(items[0], Reply::Integer(1));
        let Reply::Array(Some(inner)) = &items[1] else {
            panic!("{:?}", items[1])
        };
        assert_eq!(
            inner.clone().collect::<Result<Vec<_>, _>>(),
            Ok(vec![Reply::Simple(b"a"), Reply::Bulk(None)])
        );
        assert_eq!(items[2], Reply::Bulk(Some(b"x")));
        assert_eq!(parse_reply(b"+OK\r\n+OK\r\n"), Err(RespError::Trailing));
        assert_eq!(parse_reply(b"*1\r\n"), Err(RespError::Trailing));
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        write_array_header(&mut out, 3);
        write_bulk(&mut out, b"RPUSH");
        write_bulk(&mut out, b"bench.k7");
        write_bulk_with(&mut out, |o| o.extend_from_slice(b"0.5 1600000003"));
        assert_eq!(out, b"*3\r\n$5\r\nRPUSH\r\n$8\r\nbench.k7\r\n$14\r\n0.5 1600000003\r\n");
        // Empty and long texts get the right length in front.
        for len in [0, 9, 10, 99, 100, 1000] {
            let mut with = b"x".to_vec();
            write_bulk_with(&mut with, |o| o.resize(o.len() + len, b'a'));
            let mut plain = b"x".to_vec();
            write_bulk(&mut plain, &vec![b'a'; len]);
            assert_eq!(with, plain, "{len}");
        }
    }
}
