//! The HTTP API over real sockets: every request of
//! tests/fixtures/grafana-graphite-requests.txt (what Grafana's Graphite data
//! source sends) through a `metricsd --http-listen` on one keep-alive
//! connection, with the status, content type and JSON each must get; and
//! the connection-level behaviour a socket shows (pipelining, close).

mod common;

use common::{wait_for, TestServer, IO_TIMEOUT};
use metricsd::Client;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

const FIXTURE: &str = include_str!("fixtures/grafana-graphite-requests.txt");

/// Every key gets a point every 60 s over the fixture's last six hours,
/// each key its own constant value.
const KEYS: [(&str, f64); 4] = [
    ("servers.web1.cpu", 1.0),
    ("servers.web2.cpu", 2.0),
    ("servers.db1.cpu", 3.0),
    ("servers.db1.disk.free", 50.0),
];
const START: i64 = 1733115540;
const END: i64 = 1733137260;

/// A server with `--http-listen` on a free port, filled with [`KEYS`].
fn server() -> (TestServer, SocketAddr) {
    let server = TestServer::start(&["--http-listen", "127.0.0.1:0"]);
    let http = wait_for("the HTTP address in the log", || {
        server
            .log()
            .lines()
            .find_map(|l| l.strip_prefix("HTTP API and page on http://"))
            .and_then(|rest| rest.trim_end_matches('/').parse().ok())
    });
    let mut client = Client::new("127.0.0.1", server.addr.port(), Some(IO_TIMEOUT)).unwrap();
    for (key, value) in KEYS {
        let points: Vec<(&str, f64, Option<i64>)> = (START..=END).step_by(60).map(|t| (key, value, Some(t))).collect();
        client.put_many(&points).unwrap();
    }
    (server, http)
}

/// One block of the fixture as the bytes Grafana sends: CRLF line ends, a
/// Host and the body's Content-Length added.
fn raw_requests() -> Vec<(String, Vec<u8>)> {
    FIXTURE
        .split("\n====\n")
        .skip(1)
        .map(|block| {
            let lines: Vec<&str> = block.split('\n').collect();
            let comment = lines.iter().take_while(|l| l.starts_with('#')).count();
            let rest = &lines[comment..];
            let blank = rest
                .iter()
                .position(|l| l.is_empty())
                .expect("headers end with an empty line");
            let body = rest.get(blank + 1).copied().unwrap_or("");
            let mut raw = String::new();
            for line in &rest[..blank] {
                raw.push_str(line);
                raw.push_str("\r\n");
            }
            raw.push_str(&format!(
                "Host: grafana\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
            (rest[0].to_string(), raw.into_bytes())
        })
        .collect()
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Reads one response from `stream`: its body framed by its
/// Content-Length, or by chunks (a large `/render`), which are joined.
fn read_response(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Response {
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap();
            let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
            let headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (n, v) = l.split_once(':').unwrap();
                    (n.to_string(), v.trim().to_string())
                })
                .collect();
            let response = Response {
                status,
                headers,
                body: String::new(),
            };
            let framed = match response.header("transfer-encoding") {
                Some(coding) => {
                    assert_eq!(coding, "chunked");
                    assert_eq!(response.header("content-length"), None);
                    dechunk(&pending[end + 4..])
                }
                None => {
                    let length: usize = (response.header("content-length"))
                        .expect("an answer has a Content-Length or chunks")
                        .parse()
                        .unwrap();
                    let body = pending.get(end + 4..end + 4 + length);
                    body.map(|body| (body.to_vec(), length))
                }
            };
            if let Some((body, used)) = framed {
                pending.drain(..end + 4 + used);
                let body = String::from_utf8(body).unwrap();
                return Response { body, ..response };
            }
        }
        let n = stream.read(&mut buf).expect("read an answer within the timeout");
        assert!(n > 0, "the server closed before the whole answer");
        pending.extend_from_slice(&buf[..n]);
    }
}

/// A whole chunked body at the front of `bytes`: its data and the bytes it
/// took; None if it is not all here.
fn dechunk(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + bytes[at..].windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&bytes[at..line_end]).unwrap();
        let size = usize::from_str_radix(size, 16).expect("a hex chunk size");
        let data = line_end + 2;
        if size == 0 {
            return (bytes.get(data..data + 2)? == b"\r\n").then_some((body, data + 2));
        }
        body.extend_from_slice(bytes.get(data..data + size)?);
        assert_eq!(bytes.get(data + size..data + size + 2)?, b"\r\n");
        at = data + size + 2;
    }
}

fn connect(http: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(http).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

fn names(json: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The non-null values of every series of a render answer.
fn values(json: &serde_json::Value) -> Vec<f64> {
    let series = json.as_array().unwrap().iter();
    let points = series.flat_map(|s| s["datapoints"].as_array().unwrap().iter());
    points.filter_map(|p| p[0].as_f64()).collect()
}

#[test]
fn every_grafana_request_gets_the_answer_grafana_needs() {
    let (_server, http) = server();
    let mut stream = connect(http);
    let mut pending = Vec::new();
    let requests = raw_requests();
    assert_eq!(requests.len(), 14, "the fixture's requests");
    for (i, (line, raw)) in requests.iter().enumerate() {
        stream.write_all(raw).unwrap();
        let r = read_response(&mut stream, &mut pending);
        let what = format!("request {i}: {line}: {} {}", r.status, r.body);
        let json_ok = |r: &Response| {
            assert_eq!(r.status, 200, "{what}");
            assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
            r.json()
        };
        match i {
            // Save & test.
            0 => assert_eq!(
                r.body,
                r#"[{"target": "100.0 A", "tags": {"name": "100.0"}, "datapoints": [[100.0, 1733133599], [100.0, 1733135400], [100.0, 1733137201]]}]"#,
                "{what}"
            ),
            // sumSeries and movingAverage over 6 hours of 1-minute points.
            1 => {
                let json = json_ok(&r);
                assert_eq!(
                    names(&json),
                    [
                        r#"movingAverage(servers.web1.cpu,"5min") B"#,
                        "sumSeries(servers.*.cpu) A"
                    ]
                );
                let [a, b] = [&json[0], &json[1]];
                let a_points = a["datapoints"].as_array().unwrap();
                assert_eq!(a_points.len(), 361, "{what}");
                let odd: Vec<_> = a_points.iter().filter(|p| p[0].as_f64() != Some(6.0)).collect();
                assert!(odd.is_empty(), "{odd:?}");
                assert_eq!(a_points[0][1], 1733115600);
                assert!(values(&serde_json::json!([b])).iter().all(|&v| v == 1.0), "{what}");
            }
            // asPercent is not supported: a 400 with its one-line reason.
            2 => {
                assert_eq!(r.status, 400, "{what}");
                assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
                assert!(r.body.ends_with(": unknown function asPercent\n"), "{what}");
                assert_eq!(r.body.lines().count(), 1);
            }
            3 => {
                let json = json_ok(&r);
                assert_eq!(names(&json), ["db1 A", "web1 A", "web2 A"], "{what}");
                let mut by_value = values(&json);
                by_value.dedup();
                assert_eq!(by_value, [3.0, 1.0, 2.0], "{what}");
            }
            4 => assert_eq!(
                r.body, r#"[{"text": "servers", "id": "servers", "allowChildren": 1, "expandable": 1, "leaf": 0}]"#,
                "{what}"
            ),
            5 => assert_eq!((r.status, r.body.as_str()), (200, "[]"), "{what}"),
            6 => assert_eq!(
                json_ok(&r),
                serde_json::json!([
                    {"text": "db1", "id": "servers.db1", "allowChildren": 1, "expandable": 1, "leaf": 0},
                    {"text": "web1", "id": "servers.web1", "allowChildren": 1, "expandable": 1, "leaf": 0},
                    {"text": "web2", "id": "servers.web2", "allowChildren": 1, "expandable": 1, "leaf": 0},
                ]),
                "{what}"
            ),
            7 => {
                let json = json_ok(&r);
                let texts: Vec<&str> = json
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["text"].as_str().unwrap())
                    .collect();
                assert_eq!(texts, ["web1", "web2"], "{what}");
            }
            8 => assert_eq!(
                json_ok(&r),
                serde_json::json!([
                    {"text": "disk", "id": "servers.{web1,db1}.disk", "allowChildren": 1, "expandable": 1, "leaf": 0},
                    {"text": "cpu", "id": "servers.{web1,db1}.cpu", "allowChildren": 0, "expandable": 0, "leaf": 1},
                ]),
                "{what}"
            ),
            9 => assert_eq!(
                json_ok(&r),
                serde_json::json!({"results": ["servers.db1.cpu", "servers.web1.cpu", "servers.web2.cpu"]}),
                "{what}"
            ),
            10 => {
                assert_eq!(r.status, 200, "{what}");
                // Grafana's own replacement before it parses.
                let json: serde_json::Value = serde_json::from_str(&r.body.replace("1e9999", "1e308")).unwrap();
                for name in [
                    "aliasSub",
                    "constantLine",
                    "sumSeries",
                    "movingAverage",
                    "highestCurrent",
                ] {
                    assert_eq!(json[name]["name"], name, "{what}");
                    assert!(json[name]["params"].is_array());
                }
            }
            11 => {
                assert_eq!(r.status, 200, "{what}");
                assert!(r.body.starts_with("1.1."), "{what}");
                assert!(r.body.split('.').all(|n| n.parse::<u32>().is_ok()), "a semver: {what}");
            }
            12 => {
                let json = json_ok(&r);
                assert_eq!(
                    names(&json),
                    ["servers.db1.cpu A", "servers.web1.cpu A", "servers.web2.cpu A"]
                );
            }
            // The events annotation is not served: a 404 shows none.
            13 => assert_eq!(r.status, 404, "{what}"),
            _ => unreachable!(),
        }
    }
}

#[test]
fn a_pipeline_over_a_socket_is_answered_in_order_and_a_close_closes() {
    let (_server, http) = server();
    let mut stream = connect(http);
    let mut pipeline = Vec::new();
    for i in 0..50 {
        let path = ["/version", "/metrics/find?query=servers.*", "/nope"][i % 3];
        pipeline.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    pipeline.extend_from_slice(b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\nGET /version HTTP/1.1\r\n\r\n");
    stream.write_all(&pipeline).unwrap();
    let mut pending = Vec::new();
    for i in 0..50 {
        let r = read_response(&mut stream, &mut pending);
        assert_eq!(r.status, [200, 200, 404][i % 3], "answer {i}");
    }
    let last = read_response(&mut stream, &mut pending);
    assert_eq!((last.status, last.header("connection")), (200, Some("close")));
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert_eq!(pending, b"");
    assert_eq!(rest, b"", "nothing after the closing answer");
}

#[test]
fn a_large_render_is_bounded_and_arrives_in_chunks() {
    let (server, http) = server();
    // A day of 10-second points for 20 series: 172,800 points of JSON.
    let mut client = Client::new("127.0.0.1", server.addr.port(), Some(IO_TIMEOUT)).unwrap();
    for s in 0..20 {
        let key = format!("big.s{s}");
        let points: Vec<(&str, f64, Option<i64>)> = (0..8640)
            .map(|i| (key.as_str(), i as f64, Some(1_700_000_000 + i * 10)))
            .collect();
        client.put_many(&points).unwrap();
    }
    let mut stream = connect(http);
    let request = "GET /render?target=big.*&from=1699999999&until=1700086400&format=json HTTP/1.1\r\n\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let r = read_response(&mut stream, &mut Vec::new());
    assert_eq!(r.status, 200);
    // About 3 MB: over the first slice, so written one slice a turn.
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let json = r.json();
    assert_eq!(json.as_array().unwrap().len(), 20);
    for s in json.as_array().unwrap() {
        let points = s["datapoints"].as_array().unwrap();
        // The slot of `until` is the last, with no point in it.
        assert_eq!(points.len(), 8641);
        assert_eq!(points[8639], serde_json::json!([8639.0, 1_700_086_390]));
        assert_eq!(points[8640], serde_json::json!([null, 1_700_086_400]));
    }
    // Past the fetch bound: a 400 that says why, and the connection goes on.
    let request = "GET /render?target=big.*&from=1600000000&until=1700086400&format=json HTTP/1.1\r\n\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let r = read_response(&mut stream, &mut Vec::new());
    assert_eq!(r.status, 400);
    assert!(r.body.contains("shorter range"), "{}", r.body);
}

#[test]
fn a_refused_body_is_answered_and_the_connection_closes_while_the_client_still_sends() {
    let (_server, http) = server();
    let mut stream = connect(http);
    // 2 MiB declared: refused with 413 as soon as the head is read; the
    // body the client goes on sending is read and dropped until it stops,
    // so the answer is not lost to a reset.
    let body_len = 2 * 1024 * 1024;
    let head = format!("POST /render HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {body_len}\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let chunk = vec![b'a'; 64 * 1024];
            for _ in 0..body_len / chunk.len() {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = stream.shutdown(std::net::Shutdown::Write);
        })
    };
    let mut pending = Vec::new();
    let r = read_response(&mut stream, &mut pending);
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body, "request body of 2097152 bytes is over 1048576\n");
    writer.join().unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert_eq!((pending.len(), rest.len()), (0, 0), "nothing after the refusal");
}
