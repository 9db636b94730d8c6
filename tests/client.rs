//! The blocking `Client` over real sockets on 127.0.0.1: against the real
//! server process, and against scripted fake servers that answer exactly the
//! bytes a test wants (malformed, cut off, late, trickled, huge).

mod common;

use common::*;
use metricsd::client::{Client, ClientError, Metrics};
use metricsd::protocol::{Agg, ResponseError};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A generous per-call timeout for clients in tests that are not about
/// timeouts: a hang fails the test instead of blocking it forever.
const CALL_TIMEOUT: Option<Duration> = Some(IO_TIMEOUT);

fn client_for(server: &TestServer) -> Client {
    Client::new("127.0.0.1", server.addr.port(), CALL_TIMEOUT).expect("connect to metricsd")
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn metrics(entries: &[(&str, &[(i64, f64)])]) -> Metrics {
    entries
        .iter()
        .map(|(k, points)| (k.to_string(), points.to_vec()))
        .collect()
}

// ---------------------------------------------------------------------------
// A scripted fake server.
// ---------------------------------------------------------------------------

/// One accepted connection of a fake server. Every byte it receives is
/// recorded; all reads are bounded by `IO_TIMEOUT`, so a script that waits for
/// something that never comes fails instead of hanging.
struct Peer {
    stream: TcpStream,
    received: Vec<u8>,
    /// Bytes of `received` already handed out as lines.
    consumed: usize,
}

impl Peer {
    fn new(stream: TcpStream) -> Peer {
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Peer {
            stream,
            received: Vec::new(),
            consumed: 0,
        }
    }

    /// Reads more bytes; returns how many (0 at the client's close).
    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).expect("fake server: read (timed out?)");
        self.received.extend_from_slice(&chunk[..n]);
        n
    }

    /// The next request line, including its `\n`.
    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.received[self.consumed..].iter().position(|&b| b == b'\n') {
                let line = &self.received[self.consumed..self.consumed + i + 1];
                self.consumed += i + 1;
                return String::from_utf8(line.to_vec()).expect("request is UTF-8");
            }
            assert!(self.fill() > 0, "fake server: client closed before a whole line");
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("fake server: write");
    }

    /// Reads `n` request lines, answering each with `answer(index, line)`
    /// as soon as it has arrived.
    fn serve(&mut self, n: usize, mut answer: impl FnMut(usize, &str) -> Vec<u8>) {
        for i in 0..n {
            let line = self.line();
            let reply = answer(i, &line);
            self.send(&reply);
        }
    }

    /// Waits for the client to close the connection.
    fn until_close(&mut self) {
        while self.fill() > 0 {}
    }
}

/// A fake server on 127.0.0.1 that accepts `connections` connections and
/// runs `script(index, peer)` for each, every connection in its own thread (so
/// a script that holds one connection open does not delay the next accept).
/// Joining it returns the bytes each connection received, up to the client's
/// close: after the script returns, the fake keeps reading until the client
/// closes (at once if the script shut the connection down itself).
struct Fake {
    addr: SocketAddr,
    handle: JoinHandle<Vec<Vec<u8>>>,
}

impl Fake {
    fn start(connections: usize, script: impl Fn(usize, &mut Peer) + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let script = Arc::new(script);
        let handle = std::thread::spawn(move || {
            let mut threads = Vec::new();
            for i in 0..connections {
                let stream = wait_for(&format!("connection {i} to the fake server"), || {
                    match listener.accept() {
                        Ok((stream, _)) => Some(stream),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                        Err(e) => panic!("fake server: accept: {e}"),
                    }
                });
                let script = Arc::clone(&script);
                threads.push(std::thread::spawn(move || {
                    let mut peer = Peer::new(stream);
                    script(i, &mut peer);
                    loop {
                        let mut chunk = [0u8; 64 * 1024];
                        match peer.stream.read(&mut chunk) {
                            Ok(0) => break,
                            Ok(n) => peer.received.extend_from_slice(&chunk[..n]),
                            // A reset by a client that closed with our bytes unread.
                            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                            Err(e) => panic!("fake server: reading until the client closes: {e}"),
                        }
                    }
                    peer.received
                }));
            }
            threads
                .into_iter()
                .map(|t| t.join().expect("fake server connection panicked"))
                .collect()
        });
        Fake { addr, handle }
    }

    /// A client for this fake with a generous timeout.
    fn client(&self) -> Client {
        Client::new("127.0.0.1", self.addr.port(), CALL_TIMEOUT).expect("connect to fake server")
    }

    /// Waits for the fake to finish (the client must be dropped first);
    /// returns what each connection received, as text.
    fn received(self) -> Vec<String> {
        let all = self.handle.join().expect("fake server panicked");
        all.into_iter()
            .map(|b| String::from_utf8(b).expect("client sent UTF-8"))
            .collect()
    }
}

/// A fake that answers one request on one connection with `reply`.
fn one_answer(reply: &'static [u8]) -> Fake {
    Fake::start(1, move |_, peer| {
        peer.line();
        peer.send(reply);
    })
}

fn ok_answers(_: usize, _: &str) -> Vec<u8> {
    b"ok\n\n".to_vec()
}

// ---------------------------------------------------------------------------
// Against the real server.
// ---------------------------------------------------------------------------

/// The assignment's puts, in its order.
fn put_assignment_example(client: &mut Client) {
    client.put("palm.cpu", 0.5, Some(1150864247)).unwrap();
    client.put("palm.cpu", 2.0, Some(1150864248)).unwrap();
    client.put("palm.cpu", 0.5, Some(1150864248)).unwrap(); // same second: replaces 2.0
    client.put("eardrum.cpu", 3.0, Some(1150864250)).unwrap();
    client.put("eardrum.cpu", 4.0, Some(1150864251)).unwrap();
    client.put("eardrum.memory", 4200000.0, Some(1503320872)).unwrap();
}

#[test]
fn assignment_example_round_trip() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    put_assignment_example(&mut client);
    assert_eq!(
        client.get("palm.cpu").unwrap(),
        metrics(&[("palm.cpu", &[(1150864247, 0.5), (1150864248, 0.5)])])
    );
    assert_eq!(
        client.get("*").unwrap(),
        metrics(&[
            ("palm.cpu", &[(1150864247, 0.5), (1150864248, 0.5)]),
            ("eardrum.cpu", &[(1150864250, 3.0), (1150864251, 4.0)]),
            ("eardrum.memory", &[(1503320872, 4200000.0)]),
        ])
    );
    assert_eq!(
        client.get("eardrum.memory").unwrap(),
        metrics(&[("eardrum.memory", &[(1503320872, 4200000.0)])])
    );
    assert!(!client.is_broken());
}

#[test]
fn get_of_a_missing_key_is_an_empty_map() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    assert_eq!(client.get("nothing.here").unwrap(), Metrics::new());
    assert_eq!(client.get("*").unwrap(), Metrics::new());
    client.put("palm.cpu", 1.0, Some(1)).unwrap();
    assert_eq!(client.get("palm").unwrap(), Metrics::new());
    assert_eq!(client.get("palm.cpu.x").unwrap(), Metrics::new());
}

#[test]
fn range_and_range_agg_against_the_real_server() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    let points: Vec<(&str, f64, Option<i64>)> = (0..300)
        .flat_map(|t| [("a.cpu", t as f64, Some(t)), ("b.cpu", 0.5, Some(t * 2))])
        .collect();
    client.put_many(&points).unwrap();
    let a = |range: std::ops::RangeInclusive<i64>| -> Vec<(i64, f64)> { range.map(|t| (t, t as f64)).collect() };
    assert_eq!(
        client.range("a.cpu", 10, 14).unwrap(),
        metrics(&[("a.cpu", &a(10..=14))])
    );
    assert_eq!(
        client.range("a.cpu", 299, i64::MAX).unwrap(),
        metrics(&[("a.cpu", &a(299..=299))])
    );
    assert_eq!(client.range("a.cpu", 300, 400).unwrap(), Metrics::new());
    assert_eq!(client.range("none", i64::MIN, i64::MAX).unwrap(), Metrics::new());
    assert_eq!(
        client.range("*", 596, 600).unwrap(),
        metrics(&[("b.cpu", &[(596, 0.5), (598, 0.5)])])
    );
    assert_eq!(
        client.range("*", i64::MIN, i64::MAX).unwrap(),
        client.get("*").unwrap(),
        "range over every timestamp is get"
    );
    // Buckets of 100 s; the first starts before the window.
    let want = [
        (Agg::Avg, [(0, 74.5), (100, 149.5), (200, 224.5)]),
        (Agg::Min, [(0, 50.0), (100, 100.0), (200, 200.0)]),
        (Agg::Max, [(0, 99.0), (100, 199.0), (200, 249.0)]),
        (Agg::Sum, [(0, 3725.0), (100, 14950.0), (200, 11225.0)]),
        (Agg::Count, [(0, 50.0), (100, 100.0), (200, 50.0)]),
        (Agg::Last, [(0, 99.0), (100, 199.0), (200, 249.0)]),
    ];
    for (agg, rows) in want {
        assert_eq!(
            client.range_agg("a.cpu", 50, 249, 100, agg).unwrap(),
            metrics(&[("a.cpu", &rows)]),
            "{agg:?}"
        );
    }
    assert_eq!(
        client.range_agg("*", 0, 599, i64::MAX, Agg::Count).unwrap(),
        metrics(&[("a.cpu", &[(0, 300.0)]), ("b.cpu", &[(0, 300.0)])])
    );
    let stats = client.stats().unwrap();
    assert!(
        stats.contains(&("requests.range".to_owned(), "13".to_owned())),
        "{stats:?}"
    );
}

#[test]
fn invalid_ranges_are_refused_before_sending() {
    let fake = Fake::start(1, |_, peer| peer.serve(2, ok_answers));
    let mut client = fake.client();
    assert!(matches!(client.range("k", 2, 1), Err(ClientError::InvalidRange(m)) if m == "from 2 is after to 1"));
    for step in [0, -1, i64::MIN] {
        assert!(matches!(
            client.range_agg("k", 1, 2, step, Agg::Sum),
            Err(ClientError::InvalidRange(m)) if m == "the step must be above zero"
        ));
    }
    assert!(matches!(client.range("a b", 1, 2), Err(ClientError::InvalidKey(_))));
    assert!(matches!(
        client.range_agg("", 1, 2, 1, Agg::Avg),
        Err(ClientError::InvalidKey(_))
    ));
    assert!(!client.is_broken());
    assert_eq!(client.range("k", -5, 5).unwrap(), Metrics::new());
    assert_eq!(client.range_agg("*", 0, 0, 60, Agg::Last).unwrap(), Metrics::new());
    drop(client);
    assert_eq!(fake.received(), ["range k -5 5\nrange * 0 0 60 last\n"]);
}

#[test]
fn delete_removes_a_key_and_a_missing_key_is_no_error() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    put_assignment_example(&mut client);
    client.delete("palm.cpu").unwrap();
    client.delete("palm.cpu").unwrap();
    client.delete("never.there").unwrap();
    assert_eq!(client.get("palm.cpu").unwrap(), Metrics::new());
    assert_eq!(
        client.get("*").unwrap(),
        metrics(&[
            ("eardrum.cpu", &[(1150864250, 3.0), (1150864251, 4.0)]),
            ("eardrum.memory", &[(1503320872, 4200000.0)]),
        ])
    );
    client.put("palm.cpu", 9.0, Some(1)).unwrap();
    assert_eq!(client.get("palm.cpu").unwrap(), metrics(&[("palm.cpu", &[(1, 9.0)])]));
    for key in ["*", "", "a b"] {
        assert!(matches!(client.delete(key), Err(ClientError::InvalidKey(k)) if k == key));
    }
    assert!(!client.is_broken());
}

#[test]
fn put_without_timestamp_stores_the_current_second() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    let before = unix_now();
    client.put("now.cpu", 23.7, None).unwrap();
    let after = unix_now();
    let got = client.get("now.cpu").unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let points = &got["now.cpu"];
    assert_eq!(points.len(), 1, "{points:?}");
    let (timestamp, value) = points[0];
    assert_eq!(value, 23.7);
    assert!(
        before <= timestamp && timestamp <= after,
        "{before} <= {timestamp} <= {after}"
    );
}

#[test]
fn values_and_timestamps_survive_the_round_trip_exactly() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    let values = [
        0.1 + 0.2,
        -0.0,
        1e-7,
        1e300,
        -1.5,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        f64::MIN,
        4200000.0,
    ];
    for (i, &v) in values.iter().enumerate() {
        client.put("exact", v, Some(i as i64)).unwrap();
    }
    client.put("exact.ts", 1.0, Some(i64::MIN)).unwrap();
    client.put("exact.ts", 2.0, Some(i64::MAX)).unwrap();
    client.put("exact.ts", 3.0, Some(-5)).unwrap();
    let got = client.get("exact").unwrap();
    let points = &got["exact"];
    assert_eq!(points.len(), values.len());
    for (i, (&(ts, got), &want)) in points.iter().zip(&values).enumerate() {
        assert_eq!(ts, i as i64);
        assert_eq!(got.to_bits(), want.to_bits(), "value {i}: {got:?} != {want:?}");
    }
    assert_eq!(
        client.get("exact.ts").unwrap(),
        metrics(&[("exact.ts", &[(i64::MIN, 1.0), (-5, 3.0), (i64::MAX, 2.0)])])
    );
}

#[test]
fn non_ascii_keys_round_trip() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    client.put("пальма.cpu", 0.5, Some(1)).unwrap();
    client.put("日本.mem", 2.0, Some(2)).unwrap();
    assert_eq!(
        client.get("пальма.cpu").unwrap(),
        metrics(&[("пальма.cpu", &[(1, 0.5)])])
    );
    assert_eq!(
        client.get("*").unwrap(),
        metrics(&[("пальма.cpu", &[(1, 0.5)]), ("日本.mem", &[(2, 2.0)])])
    );
}

#[test]
fn put_many_of_ten_thousand_points_then_get_returns_them_sorted() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    const N: i64 = 10_000;
    // Timestamps in a scrambled order (7919 is prime, so this is a
    // permutation of 0..N), two keys interleaved.
    let points: Vec<(String, f64, Option<i64>)> = (0..N)
        .map(|i| {
            let ts = (i * 7919) % N;
            let key = if ts % 2 == 0 { "batch.even" } else { "batch.odd" };
            (key.to_string(), ts as f64 * 0.5, Some(ts))
        })
        .collect();
    client.put_many(&points).unwrap();
    assert!(!client.is_broken());
    let mut want = Metrics::new();
    for ts in 0..N {
        let key = if ts % 2 == 0 { "batch.even" } else { "batch.odd" };
        want.entry(key.to_string()).or_default().push((ts, ts as f64 * 0.5));
    }
    assert_eq!(client.get("*").unwrap(), want);
    let even = client.get("batch.even").unwrap();
    assert_eq!(even["batch.even"].len(), (N / 2) as usize);
    assert_eq!(even, metrics(&[("batch.even", &want["batch.even"])]));
    // The connection is still in step after the batch.
    client.put("after.batch", 1.0, Some(1)).unwrap();
    assert_eq!(
        client.get("after.batch").unwrap(),
        metrics(&[("after.batch", &[(1, 1.0)])])
    );
}

#[test]
fn put_many_with_str_keys_and_last_write_wins_within_a_batch() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    client
        .put_many(&[
            ("k", 1.0, Some(10)),
            ("k", 2.0, Some(10)),
            ("k", 3.0, Some(5)),
            ("j", 4.0, Some(1)),
        ])
        .unwrap();
    assert_eq!(
        client.get("*").unwrap(),
        metrics(&[("j", &[(1, 4.0)]), ("k", &[(5, 3.0), (10, 2.0)])])
    );
    let empty: &[(&str, f64, Option<i64>)] = &[];
    client.put_many(empty).unwrap();
}

#[test]
fn invalid_keys_and_values_are_refused_before_sending_and_the_client_goes_on() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    for key in [
        "",
        "a b",
        "a\tb",
        "a\nb",
        "a\rb",
        "*",
        "a\u{0}b",
        "a\u{7f}b",
        " lead",
        "trail ",
        // Unicode whitespace and C1 controls: Python's str.split() splits on them.
        "a\u{a0}b",
        "a\u{2028}b",
        "\u{3000}",
        "a\u{85}b",
    ] {
        match client.put(key, 1.0, Some(1)) {
            Err(ClientError::InvalidKey(k)) => assert_eq!(k, key),
            other => panic!("put({key:?}): {other:?}"),
        }
        assert!(!client.is_broken(), "put({key:?}) broke the client");
        if key != "*" {
            match client.get(key) {
                Err(ClientError::InvalidKey(k)) => assert_eq!(k, key),
                other => panic!("get({key:?}): {other:?}"),
            }
        }
    }
    assert!(matches!(client.put("k", f64::NAN, Some(1)), Err(ClientError::InvalidValue(v)) if v.is_nan()));
    assert!(matches!(
        client.put("k", f64::INFINITY, Some(1)),
        Err(ClientError::InvalidValue(v)) if v == f64::INFINITY
    ));
    assert!(matches!(
        client.put("k", f64::NEG_INFINITY, Some(1)),
        Err(ClientError::InvalidValue(v)) if v == f64::NEG_INFINITY
    ));
    assert!(!client.is_broken());
    // Nothing was stored, and the connection is in step: the next answers
    // are the right ones.
    assert_eq!(client.get("*").unwrap(), Metrics::new());
    client.put("k", 1.0, Some(1)).unwrap();
    assert_eq!(client.get("k").unwrap(), metrics(&[("k", &[(1, 1.0)])]));
}

#[test]
fn put_many_with_one_invalid_point_stores_nothing() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    let mut points: Vec<(String, f64, Option<i64>)> = (0..5000).map(|i| ("ok.key".to_string(), 1.0, Some(i))).collect();
    points[4500].0 = "bad key".to_string();
    match client.put_many(&points) {
        Err(ClientError::InvalidKey(k)) => assert_eq!(k, "bad key"),
        other => panic!("{other:?}"),
    }
    points[4500].0 = "ok.key".to_string();
    points[4999].1 = f64::NAN;
    assert!(matches!(client.put_many(&points), Err(ClientError::InvalidValue(v)) if v.is_nan()));
    assert!(matches!(
        client.put_many(&[("k", 1.0, Some(1)), ("*", 2.0, Some(2))]),
        Err(ClientError::InvalidKey(k)) if k == "*"
    ));
    assert!(!client.is_broken());
    assert_eq!(client.get("*").unwrap(), Metrics::new());
}

#[test]
fn reconnect_to_the_real_server_keeps_the_data() {
    let server = TestServer::start(&[]);
    let mut client = client_for(&server);
    client.put("palm.cpu", 2.0, Some(1150864247)).unwrap();
    client.reconnect().unwrap();
    assert_eq!(
        client.get("palm.cpu").unwrap(),
        metrics(&[("palm.cpu", &[(1150864247, 2.0)])])
    );
}

#[test]
fn many_clients_share_one_store() {
    let server = TestServer::start(&[]);
    let mut a = client_for(&server);
    let mut b = client_for(&server);
    a.put("shared", 1.0, Some(1)).unwrap();
    b.put("shared", 2.0, Some(2)).unwrap();
    assert_eq!(a.get("shared").unwrap(), metrics(&[("shared", &[(1, 1.0), (2, 2.0)])]));
    assert_eq!(b.get("*").unwrap(), a.get("*").unwrap());
}

// ---------------------------------------------------------------------------
// Against a scripted fake server.
// ---------------------------------------------------------------------------

#[test]
fn exact_request_bytes() {
    let fake = Fake::start(1, |_, peer| peer.serve(8, ok_answers));
    let mut client = fake.client();
    client.put("palm.cpu", 0.5, Some(1150864247)).unwrap();
    client.put("palm.cpu", 2.0, Some(1150864248)).unwrap();
    client.put("eardrum.memory", 4200000.0, Some(1503320872)).unwrap();
    client.put("neg", -1.0, Some(-5)).unwrap();
    assert_eq!(client.get("palm.cpu").unwrap(), Metrics::new());
    assert_eq!(client.get("*").unwrap(), Metrics::new());
    client.put("tiny", 1e-7, Some(0)).unwrap();
    client.delete("palm.cpu").unwrap();
    drop(client);
    assert_eq!(
        fake.received(),
        ["put palm.cpu 0.5 1150864247\n\
          put palm.cpu 2.0 1150864248\n\
          put eardrum.memory 4200000.0 1503320872\n\
          put neg -1.0 -5\n\
          get palm.cpu\n\
          get *\n\
          put tiny 1e-7 0\n\
          delete palm.cpu\n"]
    );
}

#[test]
fn put_without_timestamp_sends_the_current_second() {
    let fake = Fake::start(1, |_, peer| peer.serve(1, ok_answers));
    let mut client = fake.client();
    let before = unix_now();
    client.put("palm.cpu", 23.7, None).unwrap();
    let after = unix_now();
    drop(client);
    let received = fake.received();
    let line = received[0].strip_prefix("put palm.cpu 23.7 ").expect(&received[0]);
    let ts: i64 = line.strip_suffix('\n').unwrap().parse().expect(line);
    assert!(before <= ts && ts <= after, "{before} <= {ts} <= {after}");
}

#[test]
fn invalid_input_sends_no_bytes() {
    let fake = Fake::start(1, |_, peer| peer.serve(1, ok_answers));
    let mut client = fake.client();
    for key in ["", "a b", "a\tb", "a\nb", "*"] {
        assert!(matches!(client.put(key, 1.0, Some(1)), Err(ClientError::InvalidKey(k)) if k == key));
    }
    for key in ["", "a b", "a\tb", "a\nb"] {
        assert!(matches!(client.get(key), Err(ClientError::InvalidKey(k)) if k == key));
    }
    assert!(matches!(
        client.put("k", f64::NAN, Some(1)),
        Err(ClientError::InvalidValue(_))
    ));
    assert!(matches!(
        client.put("k", f64::INFINITY, None),
        Err(ClientError::InvalidValue(_))
    ));
    assert!(matches!(
        client.put_many(&[("good", 1.0, Some(1)), ("good", 2.0, Some(2)), ("a b", 3.0, Some(3))]),
        Err(ClientError::InvalidKey(k)) if k == "a b"
    ));
    assert!(matches!(
        client.put_many(&[("good", 1.0, Some(1)), ("good", f64::NEG_INFINITY, Some(2))]),
        Err(ClientError::InvalidValue(v)) if v == f64::NEG_INFINITY
    ));
    assert!(!client.is_broken());
    client.put("ok.key", 1.0, Some(1)).unwrap();
    drop(client);
    assert_eq!(fake.received(), ["put ok.key 1.0 1\n"]);
}

#[test]
fn error_answer_is_a_server_error_and_the_client_goes_on() {
    let fake = Fake::start(1, |_, peer| {
        peer.serve(4, |i, _| match i {
            0 | 2 => b"error\nwrong command\n\n".to_vec(),
            1 => b"ok\n\n".to_vec(),
            _ => b"ok\npalm.cpu 2.0 1150864247\n\n".to_vec(),
        })
    });
    let mut client = fake.client();
    match client.put("palm.cpu", 0.5, Some(1)) {
        Err(ClientError::Server(message)) => assert_eq!(message, "wrong command"),
        other => panic!("{other:?}"),
    }
    assert!(!client.is_broken());
    client.put("palm.cpu", 0.5, Some(1)).unwrap();
    assert!(matches!(client.get("palm.cpu"), Err(ClientError::Server(m)) if m == "wrong command"));
    assert!(!client.is_broken());
    assert_eq!(
        client.get("palm.cpu").unwrap(),
        metrics(&[("palm.cpu", &[(1150864247, 2.0)])])
    );
    drop(client);
    assert_eq!(
        fake.received(),
        ["put palm.cpu 0.5 1\nput palm.cpu 0.5 1\nget palm.cpu\nget palm.cpu\n"]
    );
}

#[test]
fn unknown_status_is_not_metricsd_and_breaks_the_client() {
    let fake = one_answer(b"OK\n\n");
    let mut client = fake.client();
    match client.put("palm.cpu", 0.5, Some(1150864247)) {
        Err(ClientError::NotMetricsd(seen)) => assert_eq!(seen, b"OK\n\n"),
        other => panic!("{other:?}"),
    }
    assert!(client.is_broken());
    match client.put("palm.cpu", 0.5, Some(1150864247)) {
        Err(ClientError::Broken(cause)) => assert!(
            cause.contains(r#"the server answered "OK\n..." which is not the metricsd protocol"#),
            "{cause}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(client.get("palm.cpu"), Err(ClientError::Broken(_))));
    assert!(matches!(client.get("*"), Err(ClientError::Broken(_))));
    assert!(matches!(
        client.put_many(&[("k", 1.0, Some(1))]),
        Err(ClientError::Broken(_))
    ));
    let empty: &[(&str, f64, Option<i64>)] = &[];
    assert!(matches!(client.put_many(empty), Err(ClientError::Broken(_))));
    drop(client);
    // Only the first request reached the server.
    assert_eq!(fake.received(), ["put palm.cpu 0.5 1150864247\n"]);
}

#[test]
fn bad_data_lines_are_malformed() {
    let cases: &[(&[u8], ResponseError)] = &[
        (b"ok\na x 1\n\n", ResponseError::PointValue),
        (b"ok\na nan 1\n\n", ResponseError::PointValue),
        (b"ok\na 1.0\n\n", ResponseError::PointFields),
        (b"ok\na 1.0 1 2\n\n", ResponseError::PointFields),
        (b"ok\na 1.0 1.5\n\n", ResponseError::PointTimestamp),
        (b"ok\na 1.0 1\n\xff 1.0 2\n\n", ResponseError::NotUtf8),
    ];
    for &(reply, want) in cases {
        let fake = one_answer(reply);
        let mut client = fake.client();
        match client.get("a") {
            Err(ClientError::Malformed(got)) => {
                assert_eq!(got, want, "{:?}", String::from_utf8_lossy(reply))
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(reply)),
        }
        assert!(client.is_broken());
        assert!(matches!(client.get("a"), Err(ClientError::Broken(_))));
        drop(client);
        assert_eq!(fake.received(), ["get a\n"]);
    }
}

#[test]
fn data_lines_in_a_put_answer_are_malformed() {
    let fake = one_answer(b"ok\npalm.cpu 1.0 1\n\n");
    let mut client = fake.client();
    assert!(matches!(
        client.put("palm.cpu", 1.0, Some(1)),
        Err(ClientError::Malformed(ResponseError::UnexpectedData))
    ));
    assert!(matches!(
        client.put("palm.cpu", 1.0, Some(1)),
        Err(ClientError::Broken(_))
    ));
    drop(client);
    assert_eq!(fake.received(), ["put palm.cpu 1.0 1\n"]);
}

#[test]
fn bytes_after_the_expected_answer_are_unsolicited() {
    // Both answers go out in one write, so they arrive together.
    let fake = one_answer(b"ok\n\nok\n\n");
    let mut client = fake.client();
    assert!(matches!(
        client.put("palm.cpu", 1.0, Some(1)),
        Err(ClientError::Malformed(ResponseError::Unsolicited))
    ));
    assert!(client.is_broken());
    assert!(matches!(client.get("palm.cpu"), Err(ClientError::Broken(_))));
    drop(client);
    assert_eq!(fake.received(), ["put palm.cpu 1.0 1\n"]);

    let fake = one_answer(b"ok\npalm.cpu 1.0 1\n\nok\n\n");
    let mut client = fake.client();
    assert!(matches!(
        client.get("palm.cpu"),
        Err(ClientError::Malformed(ResponseError::Unsolicited))
    ));
    drop(client);
    assert_eq!(fake.received(), ["get palm.cpu\n"]);
}

#[test]
fn answer_cut_off_by_close_is_closed_then_broken() {
    let fake = Fake::start(1, |_, peer| {
        peer.line();
        peer.send(b"ok\npalm.cpu 1.0");
        peer.stream.shutdown(Shutdown::Write).unwrap();
        peer.until_close();
    });
    let mut client = fake.client();
    assert!(matches!(client.get("palm.cpu"), Err(ClientError::Closed)));
    assert!(client.is_broken());
    match client.get("palm.cpu") {
        Err(ClientError::Broken(cause)) => assert!(cause.contains("closed"), "{cause}"),
        other => panic!("{other:?}"),
    }
    drop(client);
    assert_eq!(fake.received(), ["get palm.cpu\n"]);
}

#[test]
fn close_before_any_answer_is_closed() {
    let fake = Fake::start(1, |_, peer| {
        peer.line();
        peer.stream.shutdown(Shutdown::Write).unwrap();
        peer.until_close();
    });
    let mut client = fake.client();
    assert!(matches!(client.put("k", 1.0, Some(1)), Err(ClientError::Closed)));
    assert!(matches!(client.put("k", 1.0, Some(1)), Err(ClientError::Broken(_))));
    drop(client);
    assert_eq!(fake.received(), ["put k 1.0 1\n"]);
}

#[test]
fn silent_server_times_out_then_broken_then_reconnect_works() {
    let fake = Fake::start(2, |i, peer| {
        if i == 0 {
            // Read the request and never answer; hold the connection until
            // the client drops it (at reconnect).
            peer.line();
            peer.until_close();
        } else {
            peer.serve(2, |i, _| {
                if i == 0 {
                    b"ok\n\n".to_vec()
                } else {
                    b"ok\nk 1.0 1\n\n".to_vec()
                }
            });
        }
    });
    let mut client = Client::new("127.0.0.1", fake.addr.port(), Some(Duration::from_millis(500))).unwrap();
    assert!(matches!(client.put("k", 1.0, Some(1)), Err(ClientError::Timeout)));
    assert!(client.is_broken());
    match client.put("k", 1.0, Some(1)) {
        Err(ClientError::Broken(cause)) => assert!(cause.contains("timed out"), "{cause}"),
        other => panic!("{other:?}"),
    }
    client.reconnect().unwrap();
    assert!(!client.is_broken());
    client.put("k", 1.0, Some(1)).unwrap();
    assert_eq!(client.get("k").unwrap(), metrics(&[("k", &[(1, 1.0)])]));
    drop(client);
    // The call made while broken sent nothing.
    assert_eq!(fake.received(), ["put k 1.0 1\n", "put k 1.0 1\nget k\n"]);
}

#[test]
fn a_trickling_server_cannot_stretch_a_call_past_its_timeout() {
    // One byte of the answer every 50 ms: each read finishes well within the
    // 300 ms timeout, the whole answer would not.
    let fake = Fake::start(1, |_, peer| {
        peer.line();
        for &b in b"ok\nk 1.0 1\nk 2.0 2\nk 3.0 3\n\n" {
            if peer.stream.write_all(&[b]).is_err() {
                break; // the client gave up and closed
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut client = Client::new("127.0.0.1", fake.addr.port(), Some(Duration::from_millis(300))).unwrap();
    assert!(matches!(client.get("k"), Err(ClientError::Timeout)));
    assert!(matches!(client.get("k"), Err(ClientError::Broken(_))));
    drop(client);
    assert_eq!(fake.received(), ["get k\n"]);
}

#[test]
fn unsorted_points_are_returned_sorted() {
    let fake = one_answer(b"ok\nk 3.0 30\nb 9.0 9\nk 1.0 10\nk -2.0 -20\nb 8.0 8\nk 2.0 20\n\n");
    let mut client = fake.client();
    assert_eq!(
        client.get("*").unwrap(),
        metrics(&[
            ("b", &[(8, 8.0), (9, 9.0)]),
            ("k", &[(-20, -2.0), (10, 1.0), (20, 2.0), (30, 3.0)])
        ])
    );
    drop(client);
    fake.received();
}

#[test]
fn answers_accepted_in_forms_other_servers_use() {
    // Integers as values, runs of blanks between fields, exponent forms.
    let fake = one_answer(b"ok\nk 3 1\nk  1e-3   2\nk +0.5 3\n\n");
    let mut client = fake.client();
    assert_eq!(
        client.get("k").unwrap(),
        metrics(&[("k", &[(1, 3.0), (2, 0.001), (3, 0.5)])])
    );
    drop(client);
    fake.received();
}

#[test]
fn answer_delivered_one_byte_at_a_time() {
    const ANSWER: &[u8] = b"ok\npalm.cpu 2.0 1150864247\npalm.cpu 0.5 1150864248\neardrum.cpu 3.0 1150864250\n\n";
    let fake = Fake::start(1, |_, peer| {
        peer.line();
        for &b in ANSWER {
            peer.send(&[b]);
            std::thread::sleep(Duration::from_millis(1));
        }
        // Then an empty answer to a put, also split, with the `\n\n` apart.
        peer.line();
        peer.send(b"ok\n");
        std::thread::sleep(Duration::from_millis(20));
        peer.send(b"\n");
        // And an answer whose `\n\n` straddles two writes after data.
        peer.line();
        peer.send(b"ok\nk 1.0 1\n");
        std::thread::sleep(Duration::from_millis(20));
        peer.send(b"\n");
    });
    let mut client = fake.client();
    assert_eq!(
        client.get("*").unwrap(),
        metrics(&[
            ("eardrum.cpu", &[(1150864250, 3.0)]),
            ("palm.cpu", &[(1150864247, 2.0), (1150864248, 0.5)]),
        ])
    );
    client.put("k", 1.0, Some(1)).unwrap();
    assert_eq!(client.get("k").unwrap(), metrics(&[("k", &[(1, 1.0)])]));
    drop(client);
    assert_eq!(fake.received(), ["get *\nput k 1.0 1\nget k\n"]);
}

#[test]
fn very_large_answer() {
    const N: i64 = 100_000;
    let fake = Fake::start(1, |_, peer| {
        peer.line();
        let mut answer = b"ok\n".to_vec();
        for i in 0..N {
            let key = if i % 3 == 0 { "big.a" } else { "big.b" };
            answer.extend_from_slice(format!("{key} {:?} {}\n", i as f64 / 4.0, 1_000_000_000 + i).as_bytes());
        }
        answer.push(b'\n');
        peer.send(&answer);
        // A small answer right after, on the same connection.
        peer.line();
        peer.send(b"ok\n\n");
    });
    let mut client = fake.client();
    let got = client.get("*").unwrap();
    let mut want = Metrics::new();
    for i in 0..N {
        let key = if i % 3 == 0 { "big.a" } else { "big.b" };
        want.entry(key.to_string())
            .or_default()
            .push((1_000_000_000 + i, i as f64 / 4.0));
    }
    assert_eq!(got["big.a"].len() + got["big.b"].len(), N as usize);
    assert_eq!(got, want);
    assert_eq!(client.get("none").unwrap(), Metrics::new());
    drop(client);
    assert_eq!(fake.received(), ["get *\nget none\n"]);
}

#[test]
fn connecting_where_nothing_listens_names_the_address() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    for timeout in [None, Some(Duration::from_secs(5))] {
        match Client::new("127.0.0.1", port, timeout) {
            Err(e @ ClientError::Connect { .. }) => {
                let refused = std::io::Error::from(ErrorKind::ConnectionRefused);
                assert!(
                    matches!(&e, ClientError::Connect { source, .. } if source.kind() == refused.kind()),
                    "{e:?}"
                );
                // `Connection refused (os error 111)`, as the OS words it.
                let text = e.to_string();
                assert!(
                    text.starts_with(&format!("cannot connect to 127.0.0.1:{port}: Connection refused")),
                    "{text}"
                );
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("connected to a closed port"),
        }
    }
    // A name that does not resolve (.invalid never does, RFC 6761), and an
    // IPv6 address in brackets, whatever the reason it fails here.
    for (host, addr) in [
        ("metricsd-test.invalid", format!("metricsd-test.invalid:{port}")),
        ("::1", format!("[::1]:{port}")),
    ] {
        match Client::new(host, port, CALL_TIMEOUT) {
            Err(e @ ClientError::Connect { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with(&format!("cannot connect to {addr}: ")), "{text}");
            }
            Err(other) => panic!("{host}: {other:?}"),
            Ok(_) => panic!("connected to {host} port {port}"),
        }
    }
}

/// What a client of a fake that answers `reply` to its first request (and
/// then holds the connection until the client closes) gets from a `get`:
/// the message, and that the client is broken after it.
fn foreign_answer(reply: &'static [u8], greets_first: bool) -> String {
    let fake = Fake::start(1, move |_, peer| {
        if !greets_first {
            peer.line();
        }
        peer.send(reply);
        peer.until_close();
    });
    let mut client = fake.client();
    let message = match client.get("palm.cpu") {
        Err(e @ ClientError::NotMetricsd(_)) => e.to_string(),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(reply)),
    };
    assert!(client.is_broken());
    drop(client);
    assert_eq!(fake.received(), ["get palm.cpu\n"]);
    message
}

#[test]
fn a_server_that_is_not_metricsd_is_named_by_what_it_answered() {
    // Each keeps its connection open: the client must not wait for the
    // `\n\n` that ends a metricsd answer (the calls' timeout, 20 s, would
    // fail the test by hanging it that long first).
    let cases: &[(&[u8], bool, &str)] = &[
        (
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>",
            false,
            r#""HTTP/1.1 400 Bad Request\r\n...""#,
        ),
        (b"SSH-2.0-OpenSSH_9.6\r\n", true, r#""SSH-2.0-OpenSSH_9.6\r\n""#),
        (
            b"-ERR unknown command 'get'\r\n",
            false,
            r#""-ERR unknown command \'get\'\r\n""#,
        ),
        (b"$-1\r\n", false, r#""$-1\r\n""#),
        (b"okay\n\n", false, r#""okay\n...""#),
        (b"\n\n", false, r#""\n...""#),
        (b"\x00\xff\"", false, r#""\x00\xff\"""#),
        (
            &[b'x'; 100],
            false,
            r#""xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...""#,
        ),
    ];
    for &(reply, greets_first, shown) in cases {
        assert_eq!(
            foreign_answer(reply, greets_first),
            format!("the server answered {shown} which is not the metricsd protocol")
        );
    }
}

#[test]
fn a_foreign_answer_is_named_even_when_it_comes_a_byte_at_a_time() {
    // `o`, `k` could begin `ok\n`; `a` cannot.
    let fake = Fake::start(1, |_, peer| {
        peer.line();
        for &b in b"oka" {
            peer.send(&[b]);
        }
        peer.until_close();
    });
    let mut client = fake.client();
    match client.get("k") {
        Err(e @ ClientError::NotMetricsd(_)) => {
            assert_eq!(
                e.to_string(),
                r#"the server answered "oka" which is not the metricsd protocol"#
            )
        }
        other => panic!("{other:?}"),
    }
    drop(client);
    assert_eq!(fake.received(), ["get k\n"]);
}

#[test]
fn put_many_with_one_rejection_reads_every_answer_and_stays_usable() {
    let fake = Fake::start(1, |_, peer| {
        peer.serve(3, |i, _| {
            if i == 1 {
                b"error\nwrong command\n\n".to_vec()
            } else {
                b"ok\n\n".to_vec()
            }
        });
        peer.serve(1, ok_answers);
    });
    let mut client = fake.client();
    match client.put_many(&[("a", 1.0, Some(1)), ("b", 2.0, Some(2)), ("c", 3.0, Some(3))]) {
        Err(ClientError::Server(message)) => assert_eq!(message, "wrong command"),
        other => panic!("{other:?}"),
    }
    assert!(!client.is_broken());
    client.put("d", 4.0, Some(4)).unwrap();
    drop(client);
    assert_eq!(
        fake.received(),
        ["put a 1.0 1\nput b 2.0 2\nput c 3.0 3\nput d 4.0 4\n"]
    );
}

#[test]
fn put_many_rejection_in_the_first_window_still_sends_the_rest() {
    const N: usize = 10_000;
    let fake = Fake::start(1, |_, peer| {
        peer.serve(N, |i, _| {
            if i == 0 || i == 5000 {
                b"error\nwrong command\n\n".to_vec()
            } else {
                b"ok\n\n".to_vec()
            }
        });
        peer.serve(1, ok_answers);
    });
    let mut client = fake.client();
    let points: Vec<(String, f64, Option<i64>)> = (0..N).map(|i| (format!("k{i}"), i as f64, Some(i as i64))).collect();
    assert!(matches!(client.put_many(&points), Err(ClientError::Server(m)) if m == "wrong command"));
    assert!(!client.is_broken());
    client.put("last", 1.0, Some(1)).unwrap();
    drop(client);
    let received = fake.received();
    let lines: Vec<&str> = received[0].lines().collect();
    assert_eq!(lines.len(), N + 1);
    for (i, line) in lines[..N].iter().enumerate() {
        assert_eq!(*line, format!("put k{i} {:?} {i}", i as f64));
    }
    assert_eq!(lines[N], "put last 1.0 1");
}

#[test]
fn put_many_answers_split_across_windows_keep_the_client_in_step() {
    // A server that answers in batches: every complete line it has buffered,
    // in one write, so answers arrive in chunks unrelated to the client's
    // windows (9000 points are three windows). The client must take exactly
    // one window of answers per round trip and end in step.
    const N: usize = 9000;
    let fake = Fake::start(1, |_, peer| {
        let mut answered = 0;
        while answered < N {
            let mut batch = Vec::new();
            let mut lines = 0;
            loop {
                peer.line();
                lines += 1;
                batch.extend_from_slice(b"ok\n\n");
                if answered + lines == N || !peer.received[peer.consumed..].contains(&b'\n') {
                    break;
                }
            }
            peer.send(&batch);
            answered += lines;
        }
        peer.serve(1, |_, _| b"ok\nx 1.0 1\n\n".to_vec());
    });
    let mut client = fake.client();
    let points: Vec<(&str, f64, Option<i64>)> = (0..N).map(|i| ("x", 1.0, Some(i as i64))).collect();
    client.put_many(&points).unwrap();
    assert_eq!(client.get("x").unwrap(), metrics(&[("x", &[(1, 1.0)])]));
    drop(client);
    let received = fake.received();
    assert_eq!(received[0].lines().count(), N + 1);
}

#[test]
fn dropping_the_client_closes_the_connection() {
    let fake = Fake::start(1, |_, peer| peer.serve(1, ok_answers));
    let mut client = fake.client();
    client.put("k", 1.0, Some(1)).unwrap();
    drop(client);
    // The fake's join returns only after it has seen the close.
    assert_eq!(fake.received(), ["put k 1.0 1\n"]);
}

#[test]
fn put_many_timeout_bounds_the_whole_call_not_each_window() {
    // Three windows; each is answered 400 ms after it arrives. With a
    // timeout of 1 s per call the third window cannot finish in time; a
    // timeout per window (1 s each) would let the call succeed.
    const N: usize = 3 * 4096;
    let fake = Fake::start(1, |_, peer| {
        for _ in 0..3 {
            for _ in 0..4096 {
                peer.line();
            }
            std::thread::sleep(Duration::from_millis(400));
            peer.send(&b"ok\n\n".repeat(4096));
        }
    });
    let mut client = Client::new("127.0.0.1", fake.addr.port(), Some(Duration::from_secs(1))).unwrap();
    let points: Vec<(&str, f64, Option<i64>)> = (0..N).map(|i| ("w", 1.0, Some(i as i64))).collect();
    assert!(matches!(client.put_many(&points), Err(ClientError::Timeout)));
    assert!(client.is_broken());
    drop(client);
    let _ = fake.received();
}

#[test]
fn a_broken_client_says_so_before_judging_a_key() {
    let fake = one_answer(b"OK\n\n");
    let mut client = fake.client();
    assert!(client.get("k").is_err());
    assert!(matches!(client.put("", 1.0, Some(1)), Err(ClientError::Broken(_))));
    assert!(matches!(client.get("a b"), Err(ClientError::Broken(_))));
    assert!(matches!(client.put("k", f64::NAN, None), Err(ClientError::Broken(_))));
    drop(client);
    let _ = fake.received();
}
