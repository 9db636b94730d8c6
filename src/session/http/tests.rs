//! The HTTP session byte-in/byte-out, without sockets: every split point of
//! a request, pipelines, keep-alive and close, each refusal's exact answer,
//! and answers that wait for room.

use super::head::{MAX_BODY_BYTES, MAX_HEAD_BYTES};
use crate::engine::Engine;
use crate::session::tests::Peer;
use crate::session::{Limits, Phase, Protocol};
use crate::store::Store;

fn limits() -> Limits {
    Limits {
        max_line_bytes: 1024,
        max_pending_output: 1 << 20,
    }
}

/// Room for 16 KiB of answers: a large render goes out a slice at a time.
const SLICED_OUTPUT: Limits = Limits {
    max_line_bytes: 1024,
    max_pending_output: 16 * 1024,
};

/// Room for 10 bytes of answers: every answer is over it.
const TINY_OUTPUT: Limits = Limits {
    max_line_bytes: 1024,
    max_pending_output: 10,
};

fn peer_with(limits: Limits) -> Peer {
    let mut store = Store::new();
    for (t, v) in [(600, 1.0), (660, 2.0), (780, 4.0)] {
        store.put("servers.web1.cpu", t, v);
    }
    store.put("servers.db1.cpu", 600, 5.0);
    Peer::speaking(Protocol::Http, limits, Engine::in_memory(store))
}

fn peer() -> Peer {
    peer_with(limits())
}

/// The answer the server writes, its headers in this server's order.
fn answer(status: &str, content_type: &str, body: &str, close: bool) -> String {
    let close = if close { "Connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status}\r\nServer: metricsd/{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{close}\r\n{body}",
        env!("CARGO_PKG_VERSION"),
        body.len()
    )
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

const FIND: &[u8] = b"POST /metrics/find?from=1&until=2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nquery=*.*";
const FIND_ANSWER: &str = r#"[{"text": "db1", "id": "*.db1", "allowChildren": 1, "expandable": 1, "leaf": 0}, {"text": "web1", "id": "*.web1", "allowChildren": 1, "expandable": 1, "leaf": 0}]"#;
const RENDER: &[u8] = b"GET /render?target=servers.web1.cpu&from=599&until=780&format=json HTTP/1.1\r\nHost: x\r\n\r\n";
const RENDER_ANSWER: &str = r#"[{"target": "servers.web1.cpu", "tags": {"name": "servers.web1.cpu"}, "datapoints": [[1.0, 600], [2.0, 660], [null, 720], [4.0, 780]]}]"#;

#[test]
fn a_request_split_at_every_byte_gets_the_same_answer() {
    for request in [FIND, RENDER] {
        let want = match request == FIND {
            true => answer("200 OK", JSON, FIND_ANSWER, false),
            false => answer("200 OK", JSON, RENDER_ANSWER, false),
        };
        for cut in 0..request.len() {
            let mut peer = peer();
            peer.send(&request[..cut]);
            peer.read_all();
            assert_eq!(peer.received, b"", "answered early at {cut}");
            peer.send(&request[cut..]);
            peer.read_all();
            assert_eq!(peer.received(), want, "split at {cut}");
            assert_eq!(peer.session.phase(), Phase::Reading);
        }
    }
}

#[test]
fn a_pipeline_is_answered_in_order_one_byte_at_a_time_or_at_once() {
    let mut pipeline = Vec::new();
    let mut want = String::new();
    for _ in 0..20 {
        pipeline.extend_from_slice(RENDER);
        pipeline.extend_from_slice(FIND);
        pipeline.extend_from_slice(b"GET /version HTTP/1.1\r\n\r\n");
        want += &answer("200 OK", JSON, RENDER_ANSWER, false);
        want += &answer("200 OK", JSON, FIND_ANSWER, false);
        want += &answer("200 OK", TEXT, "1.1.10", false);
    }
    let mut at_once = peer();
    at_once.send(&pipeline);
    at_once.settle_down();
    assert!(at_once.received() == want, "answers differ");
    let mut bytewise = peer();
    for byte in &pipeline {
        bytewise.send(&[*byte]);
    }
    bytewise.settle_down();
    assert!(bytewise.received() == want, "answers differ");
}

#[test]
fn connection_close_and_http_1_0_close_after_the_answer() {
    for request in [
        &b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\nGET /version HTTP/1.1\r\n\r\n"[..],
        b"GET /version HTTP/1.0\r\n\r\nGET /version HTTP/1.0\r\n\r\n",
    ] {
        let mut peer = peer();
        peer.send(request);
        peer.read_all();
        // One answer: what follows the closing request is never answered.
        assert_eq!(peer.received(), answer("200 OK", TEXT, "1.1.10", true));
        assert_eq!(peer.session.phase(), Phase::Stopping);
        assert!(peer.session.all_sent());
    }
    let mut kept = peer();
    kept.send(b"GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    kept.read_all();
    assert_eq!(kept.received(), answer("200 OK", TEXT, "1.1.10", false));
    assert_eq!(kept.session.phase(), Phase::Reading);
}

#[test]
fn head_answers_without_the_body() {
    let mut peer = peer();
    peer.send(b"HEAD /version HTTP/1.1\r\n\r\n");
    peer.read_all();
    let full = answer("200 OK", TEXT, "1.1.10", false);
    assert_eq!(peer.received(), &full[..full.len() - "1.1.10".len()]);
}

/// The answer to `request` on a fresh session, and its phase after it.
fn answer_to(request: &[u8]) -> (String, Phase) {
    let mut peer = peer();
    peer.send(request);
    peer.read_all();
    (peer.received().to_string(), peer.session.phase())
}

#[test]
fn each_error_status_with_its_one_line_reason() {
    let kept = [
        (
            &b"GET /nope HTTP/1.1\r\n\r\n"[..],
            "404 Not Found",
            "no such path: /nope\n",
        ),
        (
            b"GET /render?target=nosuch(a.b)&format=json HTTP/1.1\r\n\r\n",
            "400 Bad Request",
            "target \"nosuch(a.b)\": unknown function nosuch\n",
        ),
        (
            b"GET /render?target=sumSeries(a.b&format=json HTTP/1.1\r\n\r\n",
            "400 Bad Request",
            "target \"sumSeries(a.b\": missing ')' at character 13\n",
        ),
        (
            b"GET /render?target=a&from=yesterdayish HTTP/1.1\r\n\r\n",
            "400 Bad Request",
            "invalid time \"yesterdayish\": unknown day reference\n",
        ),
        (
            b"GET /render?target=a&format=png HTTP/1.1\r\n\r\n",
            "400 Bad Request",
            "format \"png\" is not supported (json, csv, svg, pickle)\n",
        ),
        (
            b"GET /render?target=a&format=json&maxDataPoints=x HTTP/1.1\r\n\r\n",
            "400 Bad Request",
            "invalid maxDataPoints \"x\"\n",
        ),
        (
            b"GET /metrics/find HTTP/1.1\r\n\r\n",
            "400 Bad Request",
            "missing query\n",
        ),
    ];
    for (request, status, reason) in kept {
        let (got, phase) = answer_to(request);
        assert_eq!(
            got,
            answer(status, TEXT, reason, false),
            "{}",
            String::from_utf8_lossy(request)
        );
        assert_eq!(phase, Phase::Reading);
    }
    let (got, _) = answer_to(b"DELETE /render HTTP/1.1\r\n\r\n");
    let reason = "/render allows GET, HEAD, POST\n";
    let want = format!(
        "HTTP/1.1 405 Method Not Allowed\r\nServer: metricsd/{}\r\nContent-Type: {TEXT}\r\nContent-Length: {}\r\nAllow: GET, HEAD, POST\r\n\r\n{reason}",
        env!("CARGO_PKG_VERSION"),
        reason.len()
    );
    assert_eq!(got, want);
}

#[test]
fn refusals_close_the_connection_after_their_answer() {
    let long_head = {
        let mut head = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        head.resize(MAX_HEAD_BYTES + 1, b'a');
        head
    };
    let big_body = format!(
        "POST /render HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    );
    let cases: [(&[u8], &str, String); 5] = [
        (
            b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            "400 Bad Request",
            "malformed request head: invalid header name\n".into(),
        ),
        (
            &long_head,
            "431 Request Header Fields Too Large",
            format!("request head over {MAX_HEAD_BYTES} bytes\n"),
        ),
        (
            big_body.as_bytes(),
            "413 Content Too Large",
            format!(
                "request body of {} bytes is over {MAX_BODY_BYTES}\n",
                MAX_BODY_BYTES + 1
            ),
        ),
        (
            b"POST /render HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "411 Length Required",
            "chunked request bodies are not supported: send a Content-Length\n".into(),
        ),
        (
            b"POST /render HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "501 Not Implemented",
            "transfer coding \"gzip\" is not supported\n".into(),
        ),
    ];
    for (request, status, reason) in cases {
        let mut pipelined = request.to_vec();
        pipelined.extend_from_slice(b"GET /version HTTP/1.1\r\n\r\n");
        let (got, phase) = answer_to(&pipelined);
        assert_eq!(got, answer(status, TEXT, &reason, true));
        assert_eq!(phase, Phase::Stopping, "{status}");
    }
}

#[test]
fn a_full_output_holds_pipelined_requests_until_it_drains() {
    let mut peer = peer_with(TINY_OUTPUT);
    let mut pipeline = Vec::new();
    for _ in 0..3 {
        pipeline.extend_from_slice(RENDER);
    }
    peer.send(&pipeline);
    // One answer passes the bound; the others wait, read but unanswered.
    assert_eq!(peer.session.phase(), Phase::Throttled);
    assert!(peer.session.has_backlog());
    assert!(!peer.session.wants_input(&peer.limits));
    peer.settle_down();
    assert_eq!(peer.received(), answer("200 OK", JSON, RENDER_ANSWER, false).repeat(3));
    assert_eq!(peer.session.phase(), Phase::Reading);
}

#[test]
fn end_of_stream_drops_an_incomplete_request_and_closes() {
    let mut peer = peer();
    peer.send(&RENDER[..10]);
    peer.session.end_of_input();
    assert_eq!(peer.session.phase(), Phase::Draining);
    peer.read_all();
    assert_eq!(peer.session.phase(), Phase::Closing);
    assert_eq!(peer.received, b"");
}

#[test]
fn a_stop_answers_whole_requests_then_lingers() {
    let mut peer = peer();
    peer.send(b"GET /version HTTP/1.1\r\n\r\nGET /ver");
    peer.session.stop();
    peer.read_all();
    assert_eq!(peer.session.phase(), Phase::Stopping);
    assert_eq!(peer.received(), answer("200 OK", TEXT, "1.1.10", false));
    assert!(peer.session.all_sent());
    peer.session.linger();
    assert_eq!(peer.session.phase(), Phase::Lingering { dropped: false });
}

#[test]
fn the_page_and_its_files_are_served() {
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
    ] {
        let (got, _) = answer_to(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes());
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {got}");
        assert!(got.contains(&format!("Content-Type: {content_type}\r\n")), "{path}");
    }
}

/// A peer whose store holds `big`: 6,000 points 10 s apart from 10,010,
/// valued `i + 0.5`; its JSON answer is about 100 KB.
fn big_peer(limits: Limits) -> Peer {
    let mut store = Store::new();
    for i in 0..6_000 {
        store.put("big", 10_010 + i * 10, i as f64 + 0.5);
    }
    Peer::speaking(Protocol::Http, limits, Engine::in_memory(store))
}

const BIG: &[u8] = b"GET /render?target=big&from=10000&until=70000&format=json HTTP/1.1\r\n\r\n";

/// The JSON of `big`, written out here independently of the server's code.
fn big_json() -> String {
    let points: Vec<String> = (0..6_000).map(|i| format!("[{}.5, {}]", i, 10_010 + i * 10)).collect();
    format!(
        r#"[{{"target": "big", "tags": {{"name": "big"}}, "datapoints": [{}]}}]"#,
        points.join(", ")
    )
}

/// Splits a chunked body off the front of `bytes`: the chunks' data, and
/// what follows the last chunk.
fn dechunk(mut bytes: &str) -> (Vec<&str>, &str) {
    let mut chunks = Vec::new();
    loop {
        let (size, rest) = bytes.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size, 16).expect("a hex chunk size");
        if size == 0 {
            return (chunks, rest.strip_prefix("\r\n").expect("the end of the body"));
        }
        chunks.push(&rest[..size]);
        bytes = rest[size..].strip_prefix("\r\n").expect("CRLF after a chunk");
    }
}

fn chunked_head(close: bool) -> String {
    let close = if close { "Connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 200 OK\r\nServer: metricsd/{}\r\nContent-Type: {JSON}\r\nTransfer-Encoding: chunked\r\n{close}\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[test]
fn a_large_render_goes_out_in_chunks_one_slice_a_turn_and_requests_wait_behind_it() {
    let limits = SLICED_OUTPUT;
    let mut peer = big_peer(limits);
    peer.send(&[BIG, b"GET /version HTTP/1.1\r\n\r\n"].concat());
    // The first slice is out; the rest, and the pipelined request, wait.
    assert_eq!(peer.session.phase(), Phase::Throttled);
    assert!(peer.session.has_backlog());
    assert!(!peer.session.wants_input(&peer.limits));
    let mut turns = 0;
    while peer.session.has_backlog() {
        peer.read_all();
        let before = peer.received.len();
        peer.session.begin(&mut peer.engine, &peer.limits);
        peer.read_all();
        // A slice passes the room by at most one datapoint and its framing.
        assert!(
            peer.received.len() - before <= SLICED_OUTPUT.max_pending_output + 40,
            "turn {turns}"
        );
        turns += 1;
        assert!(turns < 100, "the answer never ended");
    }
    let received = peer.received();
    let body = received.strip_prefix(&chunked_head(false)).expect("a chunked head");
    let (chunks, after) = dechunk(body);
    let (got, want) = (chunks.concat(), big_json());
    assert!(
        got == want,
        "{} bytes, want {}; differ from {:?}",
        got.len(),
        want.len(),
        got.bytes().zip(want.bytes()).position(|(a, b)| a != b)
    );
    // The first slice is the 64 KiB every connection may always have.
    assert!(
        (64 * 1024..64 * 1024 + 20).contains(&chunks[0].len()),
        "{}",
        chunks[0].len()
    );
    assert!(
        chunks.len() >= 3 && turns >= 2,
        "{} chunks, {turns} turns",
        chunks.len()
    );
    assert_eq!(after, answer("200 OK", TEXT, "1.1.10", false));
    assert_eq!(peer.session.phase(), Phase::Reading);
    assert_eq!(figure(&peer, "http.sliced"), 1);
}

#[test]
fn a_large_render_to_http_1_0_ends_with_the_connection() {
    let mut peer = big_peer(SLICED_OUTPUT);
    peer.send(b"GET /render?target=big&from=10000&until=70000&format=json HTTP/1.0\r\n\r\n");
    peer.settle_down();
    let head = format!(
        "HTTP/1.1 200 OK\r\nServer: metricsd/{}\r\nContent-Type: {JSON}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(peer.received() == head + &big_json(), "{} bytes", peer.received.len());
    assert_eq!(peer.session.phase(), Phase::Stopping);
    assert!(peer.session.all_sent());
}

#[test]
fn head_of_a_large_render_is_its_chunked_head_alone() {
    let mut peer = big_peer(SLICED_OUTPUT);
    let head = [b"HEAD", &BIG[3..]].concat();
    peer.send(&[&head[..], b"GET /version HTTP/1.1\r\n\r\n"].concat());
    peer.settle_down();
    assert_eq!(
        peer.received(),
        chunked_head(false) + &answer("200 OK", TEXT, "1.1.10", false)
    );
    // No body went out, in slices or otherwise.
    assert_eq!(figure(&peer, "http.sliced"), 0);
}

#[test]
fn a_small_render_keeps_its_length_under_any_room() {
    // An answer under the 64 KiB always allowed is whole, even when the
    // connection's room is smaller.
    let mut peer = peer_with(TINY_OUTPUT);
    peer.send(RENDER);
    peer.settle_down();
    assert_eq!(peer.received(), answer("200 OK", JSON, RENDER_ANSWER, false));
}

const CONTINUE: &str = "HTTP/1.1 100 Continue\r\n\r\n";

#[test]
fn expect_100_continue_is_answered_before_the_body_once() {
    let head = b"POST /metrics/find HTTP/1.1\r\nExpect: 100-continue\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\n";
    let mut peer = peer();
    peer.send(head);
    peer.read_all();
    assert_eq!(peer.received(), CONTINUE);
    peer.send(b"query");
    peer.read_all();
    assert_eq!(peer.received(), CONTINUE, "one 100 a request");
    peer.send(b"=*.*");
    peer.read_all();
    assert_eq!(
        peer.received(),
        CONTINUE.to_string() + &answer("200 OK", JSON, FIND_ANSWER, false)
    );
    // The next request with a body gets its own 100.
    peer.send(head);
    peer.read_all();
    assert!(peer.received().ends_with(CONTINUE));
    assert_eq!(figure(&peer, "http.continues"), 2);
    // A client that did not wait: its body is here, no 100.
    let (got, _) = answer_to(&[&head[..], b"query=*.*"].concat());
    assert_eq!(got, answer("200 OK", JSON, FIND_ANSWER, false));
    // HTTP/1.0 ignores the expectation.
    let (got, _) = answer_to(b"POST /metrics/find HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n");
    assert_eq!(got, "");
}

#[test]
fn a_refused_expect_100_continue_is_answered_at_once_and_closes() {
    let big = format!(
        "POST /render HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    );
    let cases: [(&[u8], String); 4] = [
        (
            big.as_bytes(),
            answer(
                "413 Content Too Large",
                TEXT,
                &format!("request body of {} bytes is over {MAX_BODY_BYTES}\n", MAX_BODY_BYTES + 1),
                true,
            ),
        ),
        (
            b"POST /nope HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            answer("404 Not Found", TEXT, "no such path: /nope\n", true),
        ),
        (
            b"POST /version HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            format!(
                "HTTP/1.1 405 Method Not Allowed\r\nServer: metricsd/{}\r\nContent-Type: {TEXT}\r\nContent-Length: 26\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n/version allows GET, HEAD\n",
                env!("CARGO_PKG_VERSION")
            ),
        ),
        (
            b"POST /render HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\n",
            answer(
                "417 Expectation Failed",
                TEXT,
                "expectation \"200-ok\" is not supported (100-continue)\n",
                true,
            ),
        ),
    ];
    for (request, want) in cases {
        let (got, phase) = answer_to(request);
        assert_eq!(got, want, "{}", String::from_utf8_lossy(request));
        assert_eq!(phase, Phase::Stopping);
    }
}

/// A `stats` figure of the peer's engine.
fn figure(peer: &Peer, name: &str) -> u64 {
    let figures = peer.engine.figures();
    figures
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no figure {name}"))
        .1
}

#[test]
fn requests_are_counted_by_route_and_status() {
    let mut peer = peer();
    let requests = [
        RENDER,
        FIND,
        b"GET /version HTTP/1.1\r\n\r\n",
        b"GET /nope HTTP/1.1\r\n\r\n",
    ]
    .concat();
    peer.send(&requests);
    peer.send(b"GET /render?target=a(&format=json HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nBad\r\n\r\n");
    peer.settle_down();
    let counted = [
        ("requests.http", 6),
        ("http.route.render", 2),
        ("http.route.find", 1),
        ("http.route.version", 1),
        ("http.route.page", 0),
        ("http.route.none", 2),
        ("http.status.200", 3),
        ("http.status.400", 2),
        ("http.status.404", 1),
        ("http.sliced", 0),
        ("http.continues", 0),
    ];
    for (name, count) in counted {
        assert_eq!(figure(&peer, name), count, "{name}");
    }
    // Every status the server answers with has its figure.
    for status in super::reply::Status::ALL {
        figure(&peer, &format!("http.status.{}", status.code()));
    }
}

#[test]
fn a_large_csv_render_goes_out_in_chunks_too() {
    let mut peer = big_peer(SLICED_OUTPUT);
    peer.send(b"GET /render?target=big&from=10000&until=70000&format=csv HTTP/1.1\r\n\r\n");
    peer.settle_down();
    // Every timestamp is on 1970-01-01 (under 86,400).
    let want: String = (0..6_000)
        .map(|i| {
            let t = 10_010 + i * 10;
            format!(
                "big,1970-01-01 {:02}:{:02}:{:02},{i}.5\r\n",
                t / 3600,
                t / 60 % 60,
                t % 60
            )
        })
        .collect();
    let head = chunked_head(false).replace(JSON, "text/csv");
    let body = peer.received().strip_prefix(&head).expect("a chunked head");
    let (chunks, after) = dechunk(body);
    assert!(chunks.concat() == want, "{} bytes", chunks.concat().len());
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    assert_eq!(after, "");
}

#[test]
fn a_render_waits_while_the_shared_output_memory_is_full_and_goes_on_once_it_frees() {
    let limits = SLICED_OUTPUT;
    let mut peer = big_peer(limits.clone());
    // Other connections hold all the memory answers may take.
    peer.engine.limit_output(1 << 20);
    peer.engine.output_changed(0, 1 << 20);
    peer.send(&[BIG, b"GET /version HTTP/1.1\r\n\r\n"].concat());
    // Read, not evaluated: nothing written, nothing held, nothing read more.
    assert_eq!(peer.session.output().pending(), 0);
    assert_eq!(peer.session.held_answer_bytes(), 0);
    assert_eq!(peer.session.phase(), Phase::Throttled);
    assert!(peer.session.has_backlog());
    assert!(peer.session.waits_for_shared_room(&limits));
    assert!(!peer.session.wants_input(&limits));
    // Woken while the memory is still full, it waits on.
    peer.session.begin(&mut peer.engine, &limits);
    peer.read_all();
    assert_eq!(peer.received(), "");
    assert!(peer.session.waits_for_shared_room(&limits));
    // A connection that needs no evaluation is answered meanwhile.
    let mut other = big_peer(limits.clone());
    other.engine.limit_output(1 << 20);
    other.engine.output_changed(0, 1 << 20);
    other.send(b"GET /version HTTP/1.1\r\n\r\n");
    other.read_all();
    assert_eq!(other.received(), answer("200 OK", TEXT, "1.1.10", false));
    // The others read theirs: the render is evaluated, and holds its
    // series (6,000 values, 16 bytes each) until they are written.
    peer.engine.output_changed(1 << 20, 0);
    peer.session.begin(&mut peer.engine, &limits);
    assert!(!peer.session.waits_for_shared_room(&limits));
    assert!(peer.session.held_answer_bytes() >= 6_000 * 16);
    peer.settle_down();
    assert_eq!(peer.session.held_answer_bytes(), 0);
    let received = peer.received();
    let body = received.strip_prefix(&chunked_head(false)).expect("a chunked head");
    let (chunks, after) = dechunk(body);
    assert!(chunks.concat() == big_json());
    assert_eq!(after, answer("200 OK", TEXT, "1.1.10", false));
    assert_eq!(peer.session.phase(), Phase::Reading);
}

#[test]
fn the_series_a_render_holds_count_against_the_shared_output_memory() {
    let limits = SLICED_OUTPUT;
    let mut first = big_peer(limits.clone());
    first.engine.limit_output(4096);
    // An unread render holds its series: the next render on the same
    // engine finds no shared room, and waits.
    first.send(BIG);
    let held = first.session.held_answer_bytes();
    assert!(held >= 6_000 * 16, "{held} bytes held");
    let pending = first.session.output().pending();
    first.engine.output_changed(0, pending + held);
    let mut second = Peer::speaking(Protocol::Http, limits.clone(), first.engine);
    second.send(BIG);
    assert_eq!(second.session.output().pending(), 0);
    assert!(second.session.waits_for_shared_room(&limits));
    // A limit of 0 counts as 1: with nothing held anywhere, it goes on.
    second.engine.output_changed(pending + held, 0);
    second.engine.limit_output(0);
    second.session.begin(&mut second.engine, &limits);
    assert!(second.session.output().pending() > 0);
    assert!(!second.session.waits_for_shared_room(&limits));
}
