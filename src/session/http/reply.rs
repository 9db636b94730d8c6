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
            Status::HeaderTooLarge => 431,
            Status::NotImplemented => 501,
        }
    }

    /// RFC 9110's reason phrases (431: RFC 6585).
    fn phrase(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::LengthRequired => "Length Required",
            Status::ContentTooLarge => "Content Too Large",
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

/// Writes `reply` to `out`; without its body for a HEAD request. `close`:
/// the connection closes after it, and says so.
pub fn write(out: &mut Vec<u8>, reply: &Reply, close: bool, head_only: bool) {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nServer: metricsd/{}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        reply.status.code(),
        reply.status.phrase(),
        env!("CARGO_PKG_VERSION"),
        reply.content_type,
        reply.body.len()
    );
    if let Some(allow) = reply.allow {
        head.push_str(&format!("Allow: {allow}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    if !head_only {
        out.extend_from_slice(&reply.body);
    }
}
