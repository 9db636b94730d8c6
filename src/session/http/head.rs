//! Cutting one HTTP/1.x request off the front of the bytes read: its head
//! parsed by `httparse`, its body by `Content-Length`, every size bounded.
//! No I/O and no allocation for a request that fits.

use super::reply::Status;

/// The longest request head (request line and headers) accepted: 16 KiB,
/// Node.js's default `--max-http-header-size`. Grafana sends `/render` and
/// `/metrics/find` as POST bodies, so its heads are a few hundred bytes;
/// a GET of a long `target` list fits too. Longer: 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers in one head: httparse needs a fixed array. 64 is twice what
/// browsers and Grafana's proxy send. More: 431.
pub const MAX_HEADERS: usize = 64;
/// The largest request body accepted: 1 MiB, nginx's default
/// `client_max_body_size`. A Grafana `/render` body with a dozen targets is
/// a few KB. Larger: 413, before any of it is read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    /// Any other token: 405 on a known path, 404 elsewhere.
    Other,
}

/// A request cut from the input, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: Method,
    /// The target's path, without its query.
    pub path: &'a str,
    /// The query string after `?`, undecoded.
    pub query: &'a str,
    /// The body is a form (`application/x-www-form-urlencoded`).
    pub form_body: bool,
    pub body: &'a [u8],
    /// The connection stays open after the answer (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// HTTP/1.1: the client reads a chunked answer.
    pub http_1_1: bool,
}

/// A request that cannot be answered as asked: its status and one-line
/// reason. The framing of what follows is lost, so the connection closes
/// after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    pub reason: String,
}

/// What the front of the input holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed<'a> {
    /// Not a whole request yet.
    Incomplete,
    /// A whole request and how many bytes it took.
    Request(Request<'a>, usize),
    /// The head of a request with a body not all here, sent with `Expect:
    /// 100-continue` (HTTP/1.1): the client waits for `100 Continue`, or a
    /// final answer, before it sends the body. The request's `body` is
    /// empty.
    WantsContinue(Request<'a>),
    Refused(Refusal),
}

fn refuse(status: Status, reason: impl Into<String>) -> Framed<'static> {
    Framed::Refused(Refusal {
        status,
        reason: reason.into(),
    })
}

/// Cuts the first request off `input`.
pub fn next(input: &[u8]) -> Framed<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(input) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if input.len() <= MAX_HEAD_BYTES => return Framed::Incomplete,
        Ok(_) => {
            return refuse(
                Status::HeaderTooLarge,
                format!("request head over {MAX_HEAD_BYTES} bytes"),
            )
        }
        Err(httparse::Error::TooManyHeaders) => {
            return refuse(Status::HeaderTooLarge, format!("more than {MAX_HEADERS} headers"))
        }
        Err(e) => return refuse(Status::BadRequest, format!("malformed request head: {e}")),
    };
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version) else {
        return refuse(Status::BadRequest, "malformed request line");
    };
    let mut keep_alive = version == 1;
    let mut content_length: Option<usize> = None;
    let mut form_body = false;
    let mut expect_continue = false;
    for header in parsed.headers.iter() {
        let name = header.name;
        let value = String::from_utf8_lossy(header.value);
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let Some(length) = value
                .parse::<usize>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
            else {
                return refuse(Status::BadRequest, format!("invalid Content-Length {value:?}"));
            };
            if content_length.is_some_and(|l| l != length) {
                return refuse(Status::BadRequest, "conflicting Content-Length headers");
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are refused, not decoded: every client of the
            // Graphite API sends a Content-Length for its small forms.
            return match value.rsplit(',').next().map(str::trim) {
                Some(last) if last.eq_ignore_ascii_case("chunked") => refuse(
                    Status::LengthRequired,
                    "chunked request bodies are not supported: send a Content-Length",
                ),
                _ => refuse(
                    Status::NotImplemented,
                    format!("transfer coding {value:?} is not supported"),
                ),
            };
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && version == 0 {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            // RFC 9110, 10.1.1: 100-continue is the only expectation; an
            // HTTP/1.0 client's is ignored (it cannot read a 100).
            if !value.eq_ignore_ascii_case("100-continue") {
                return refuse(
                    Status::ExpectationFailed,
                    format!("expectation {value:?} is not supported (100-continue)"),
                );
            }
            expect_continue = version == 1;
        } else if name.eq_ignore_ascii_case("content-type") {
            let media = value.split(';').next().unwrap_or("").trim();
            form_body = media.eq_ignore_ascii_case("application/x-www-form-urlencoded");
        }
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > MAX_BODY_BYTES {
        return refuse(
            Status::ContentTooLarge,
            format!("request body of {body_len} bytes is over {MAX_BODY_BYTES}"),
        );
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method,
        path,
        query,
        form_body,
        body: &[],
        keep_alive,
        http_1_1: version == 1,
    };
    match input.get(head_len..head_len + body_len) {
        Some(body) => {
            request.body = body;
            Framed::Request(request, head_len + body_len)
        }
        None if expect_continue => Framed::WantsContinue(request),
        None => Framed::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(input: &[u8]) -> (Request<'_>, usize) {
        match next(input) {
            Framed::Request(request, used) => (request, used),
            other => panic!("{other:?}"),
        }
    }

    fn refused(input: &[u8]) -> (Status, String) {
        match next(input) {
            Framed::Refused(r) => (r.status, r.reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_get_with_its_query() {
        let input = b"GET /render?target=a.b&format=json HTTP/1.1\r\nHost: x\r\n\r\nGET /";
        let (r, used) = request(input);
        assert_eq!(used, input.len() - 5);
        assert_eq!(
            (r.method, r.path, r.query),
            (Method::Get, "/render", "target=a.b&format=json")
        );
        assert!(r.keep_alive && r.body.is_empty() && !r.form_body);
    }

    #[test]
    fn a_post_waits_for_its_whole_body() {
        let input = b"POST /metrics/find HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: 7\r\n\r\nquery=*";
        for cut in 0..input.len() {
            assert_eq!(next(&input[..cut]), Framed::Incomplete, "cut at {cut}");
        }
        let (r, used) = request(input);
        assert_eq!(
            (r.method, r.body, r.form_body, used),
            (Method::Post, &b"query=*"[..], true, input.len())
        );
    }

    #[test]
    fn keep_alive_by_version_and_connection_header() {
        assert!(!request(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").0.keep_alive);
        assert!(!request(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            request(b"GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n")
                .0
                .keep_alive
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(refused(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").0, Status::BadRequest);
        assert_eq!(refused(b"\x01GET / HTTP/1.1\r\n\r\n").0, Status::BadRequest);
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nContent-Length: x1\r\n\r\n").0,
            Status::BadRequest
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n").0,
            Status::BadRequest
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").0,
            Status::BadRequest
        );
        let too_big = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY_BYTES + 1);
        assert_eq!(refused(too_big.as_bytes()).0, Status::ContentTooLarge);
        let chunked = refused(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(chunked.0, Status::LengthRequired);
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").0,
            Status::NotImplemented
        );
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert_eq!(
            refused(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).0,
            Status::HeaderTooLarge
        );
    }

    #[test]
    fn expect_100_continue_before_the_body() {
        let head = b"POST /render HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
        let Framed::WantsContinue(r) = next(head) else {
            panic!("{:?}", next(head))
        };
        assert_eq!((r.method, r.path, r.body), (Method::Post, "/render", &b""[..]));
        // Part of the body: still waiting, still for a 100.
        let partial = [&head[..], b"a="].concat();
        assert!(matches!(next(&partial), Framed::WantsContinue(_)));
        // All of it (the client did not wait): the request.
        let whole = [&head[..], b"a=b"].concat();
        assert_eq!(request(&whole).1, whole.len());
        // HTTP/1.0: the expectation is ignored.
        let old = b"POST /render HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(next(old), Framed::Incomplete);
        // Any other expectation: 417; a body over the limit: 413 at once.
        let other = refused(b"POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n");
        assert_eq!(other.0, Status::ExpectationFailed);
        let too_big = format!(
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(refused(too_big.as_bytes()).0, Status::ContentTooLarge);
    }

    #[test]
    fn a_head_past_the_limit_is_refused_before_it_ends() {
        let mut input = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        input.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(next(&input), Framed::Incomplete);
        input.push(b'a');
        assert_eq!(refused(&input).0, Status::HeaderTooLarge);
    }
}
