//! An HTTP answer's bytes: status line, the few headers this server sends,
//! and the body.

use std::borrow::Cow;

/// The statuses this server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    LengthRequired,
    ContentTooLarge,
    ExpectationFailed,
    HeaderTooLarge,
    NotImplemented,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::LengthRequired => 411,
            Status::ContentTooLarge => 413,
            Status::ExpectationFailed => 417,
            Status::HeaderTooLarge => 431,
            Status::NotImplemented => 501,
        }
    }

    /// Every status, in code order (the tests check that `stats` counts
    /// each).
    #[cfg(test)]
    pub const ALL: [Status; 9] = [
        Status::Ok,
        Status::BadRequest,
        Status::NotFound,
        Status::MethodNotAllowed,
        Status::LengthRequired,
        Status::ContentTooLarge,
        Status::ExpectationFailed,
        Status::HeaderTooLarge,
        Status::NotImplemented,
    ];

    /// RFC 9110's reason phrases (431: RFC 6585).
    fn phrase(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::LengthRequired => "Length Required",
            Status::ContentTooLarge => "Content Too Large",
            Status::ExpectationFailed => "Expectation Failed",
            Status::HeaderTooLarge => "Request Header Fields Too Large",
            Status::NotImplemented => "Not Implemented",
        }
    }
}

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";

/// One answer, before it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: Status,
    pub content_type: &'static str,
    pub body: Cow<'static, [u8]>,
    /// The methods a path allows, sent with a 405.
    pub allow: Option<&'static str>,
}

impl Reply {
    pub fn ok(content_type: &'static str, body: impl Into<Cow<'static, [u8]>>) -> Reply {
        Reply {
            status: Status::Ok,
            content_type,
            body: body.into(),
            allow: None,
        }
    }

    /// An error: its one-line reason as a plain-text body.
    pub fn error(status: Status, reason: &str) -> Reply {
        let line: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        Reply {
            status,
            content_type: TEXT,
            body: format!("{line}\n").into_bytes().into(),
            allow: None,
        }
    }
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`: the body is whole before the head is written.
    Length(usize),
    /// `Transfer-Encoding: chunked` (HTTP/1.1): a body written a slice at
    /// a time, each slice one chunk.
    Chunked,
    /// No length: the body ends when the connection closes, for an
    /// HTTP/1.0 client, which cannot read chunks.
    UntilClose,
}

/// The interim answer to `Expect: 100-continue`: send the body.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Writes `reply` to `out`; without its body for a HEAD request. `close`:
/// the connection closes after it, and says so.
pub fn write(out: &mut Vec<u8>, reply: &Reply, close: bool, head_only: bool) {
    let framing = Framing::Length(reply.body.len());
    write_head(out, reply.status, reply.content_type, framing, reply.allow, close);
    if !head_only {
        out.extend_from_slice(&reply.body);
    }
}

/// Writes the status line and headers of an answer.
pub fn write_head(
    out: &mut Vec<u8>,
    status: Status,
    content_type: &str,
    framing: Framing,
    allow: Option<&str>,
    close: bool,
) {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nServer: metricsd/{}\r\nContent-Type: {}\r\n",
        status.code(),
        status.phrase(),
        env!("CARGO_PKG_VERSION"),
        content_type,
    );
    match framing {
        Framing::Length(len) => head.push_str(&format!("Content-Length: {len}\r\n")),
        Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
        Framing::UntilClose => {}
    }
    if let Some(allow) = allow {
        head.push_str(&format!("Allow: {allow}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
}

/// A body written a slice at a time (a large `/render` answer), so that it
/// is never whole in memory and one answer cannot hold up the loop.
pub trait SlicedBody: Send {
    /// Appends about `room` more bytes of the body to `out` (the slice may
    /// pass `room` by a small, bounded amount); returns whether the body is
    /// complete.
    fn write_slice(&mut self, out: &mut Vec<u8>, room: usize) -> bool;

    /// The heap bytes the body holds to write the rest (its series'
    /// values, names and tags): counted with the unsent output against
    /// `--max-output-memory`, so that answers nobody reads cannot hold
    /// memory past it.
    fn held_bytes(&self) -> usize;
}

impl SlicedBody for crate::graphite::render::JsonAnswer {
    fn write_slice(&mut self, out: &mut Vec<u8>, room: usize) -> bool {
        self.write(out, room)
    }

    fn held_bytes(&self) -> usize {
        self.held_bytes()
    }
}

impl SlicedBody for crate::graphite::render::CsvAnswer {
    fn write_slice(&mut self, out: &mut Vec<u8>, room: usize) -> bool {
        self.write(out, room)
    }

    fn held_bytes(&self) -> usize {
        self.held_bytes()
    }
}

impl SlicedBody for crate::graphite::pickle::PickleAnswer {
    fn write_slice(&mut self, out: &mut Vec<u8>, room: usize) -> bool {
        self.write(out, room)
    }

    fn held_bytes(&self) -> usize {
        self.held_bytes()
    }
}

/// An answer whose body is written in slices.
pub struct Sliced {
    pub content_type: &'static str,
    pub body: Box<dyn SlicedBody>,
}

impl std::fmt::Debug for Sliced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sliced({})", self.content_type)
    }
}

/// Appends the next slice of `body` to `out` as it is framed: one chunk
/// (none if the slice is empty, which would end the body) and, once the
/// body is complete, the last chunk; or the bytes as they are. Returns
/// whether the body is complete.
pub fn write_slice(out: &mut Vec<u8>, body: &mut dyn SlicedBody, framing: Framing, room: usize) -> bool {
    if framing != Framing::Chunked {
        return body.write_slice(out, room);
    }
    // Room for the longest size line (eight hex digits: a slice is far
    // below 4 GiB), moved back once the size is known.
    const SIZE_LINE: usize = 10;
    let at = out.len();
    out.extend_from_slice(&[0; SIZE_LINE]);
    let done = body.write_slice(out, room);
    let len = out.len() - at - SIZE_LINE;
    if len == 0 {
        out.truncate(at);
    } else {
        let size = format!("{len:x}\r\n");
        out.copy_within(at + SIZE_LINE.., at + size.len());
        out.truncate(out.len() - (SIZE_LINE - size.len()));
        out[at..at + size.len()].copy_from_slice(size.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if done {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of the given pieces, one a slice.
    struct Pieces(Vec<&'static str>);

    impl SlicedBody for Pieces {
        fn write_slice(&mut self, out: &mut Vec<u8>, _room: usize) -> bool {
            if !self.0.is_empty() {
                out.extend_from_slice(self.0.remove(0).as_bytes());
            }
            self.0.is_empty()
        }

        fn held_bytes(&self) -> usize {
            0
        }
    }

    #[test]
    fn chunks_have_their_hex_size_and_the_last_ends_the_body() {
        let long: &'static str = "x".repeat(300).leak();
        let mut body = Pieces(vec!["hello", "", long, "!"]);
        let mut out = b"head".to_vec();
        let mut done = Vec::new();
        for _ in 0..4 {
            done.push(write_slice(&mut out, &mut body, Framing::Chunked, 10));
        }
        assert_eq!(done, [false, false, false, true]);
        // The empty slice writes nothing: an empty chunk would end the body.
        let want = format!("head5\r\nhello\r\n12c\r\n{long}\r\n1\r\n!\r\n0\r\n\r\n");
        assert_eq!(String::from_utf8(out).unwrap(), want);
        let mut raw = Pieces(vec!["a", "b"]);
        let mut out = Vec::new();
        assert!(!write_slice(&mut out, &mut raw, Framing::UntilClose, 10));
        assert!(write_slice(&mut out, &mut raw, Framing::UntilClose, 10));
        assert_eq!(out, b"ab");
    }
}
