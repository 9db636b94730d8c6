//! Many hostile connections at once against the real server binary.
//!
//! 64 threads, each with its own fixed seed, open 16 connections one after
//! the other. Each connection sends random bytes and random valid and invalid
//! request lines (overlong ones, `\r\n` endings, blanks and tabs, control
//! bytes, invalid UTF-8) in random pieces, and ends in one of three ways:
//! - a half-close, after which it reads every answer to the server's close
//!   and checks each against what the protocol module makes of the bytes
//!   sent (no timing: a stall shows as a read timeout);
//! - a reset (SO_LINGER 0), or a plain close with answers left unread, both
//!   most often in the middle of a long line the server has to keep.
//!
//! Afterwards the server holds no more descriptors than before, its memory is
//! back within [`RSS_BOUND_KIB`] of the baseline, and it answers a put and a
//! get exactly right.

mod common;

use common::*;
use metricsd::protocol::response::parse_response;
use metricsd::protocol::{parse_line, Framed, LineFramer, Query, Request, Response, ResponseScanner};
use socket2::SockRef;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

/// Concurrent connections: one per thread, each thread with its own seed.
const THREADS: u64 = 64;
/// Connections each thread opens, one after the other.
const CONNECTIONS_PER_THREAD: usize = 16;
/// The line limit, passed to the server so that the test frames as it does
/// (the default, so that a kept partial line can be large).
const MAX_LINE: usize = 65536;
/// How far the server's resident memory may stay above the baseline once
/// every hostile connection is gone. With a server that frees what a closed
/// connection held, the growth measured is a few MiB at most: allocator
/// slack, the slab of connection slots, the few hundred points stored.
const RSS_BOUND_KIB: u64 = 8 * 1024;

/// Keys the random puts and gets use: few, so the store stays tiny and a
/// `get` answer stays short.
const KEYS: [&str; 6] = ["h.cpu", "h.mem", "h.\u{0436}", "h.\u{1f600}", "h", "h.a.b.c"];
/// Values in the forms clients send.
const VALUES: [&str; 9] = ["1", "-0", "0.5", "+2.25", "1e-3", "-1.5e300", "4200000", "5e-324", "7."];
/// Lines that are each invalid for one reason.
const INVALID: [&[u8]; 18] = [
    b"PUT h 1 2",
    b"got h",
    b"get",
    b"get h h",
    b"put h 1",
    b"put h 1 2 3",
    b"put h nan 1",
    b"put h 1e400 1",
    b"put h 1 1.5",
    b"put * 1 2",
    b"put h\x00 1 2",
    b"get \xff\xfe",
    b"get h\xc2\xa0x",
    b"put h 1 \x7f",
    b"range h 2 1",
    b"range h 1 2 0 avg",
    b"range * 1 2 5 mean",
    b"range h 1 2 5",
];

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    /// shutdown(Write), then read every answer until the server closes.
    HalfClose,
    /// SO_LINGER 0: the close sends a reset.
    Reset,
    /// A plain close, with whatever answers arrived left unread (which also
    /// turns the close into a reset).
    Close,
}

/// What one connection sends and how it ends.
struct Plan {
    bytes: Vec<u8>,
    end: End,
    /// Where the unterminated line at the end starts (`bytes.len()` if none).
    partial_from: usize,
}

/// The answer a request line must get.
#[derive(Debug)]
enum Expected {
    Ok,
    Error,
    /// A get of one key (`Some`) or of all (`None`): the points depend on
    /// what other connections put, so only their form is checked.
    Get(Option<String>),
    /// `stats`: its figures change, so only its start is checked.
    Stats,
}

#[test]
fn many_hostile_connections_leave_no_trace() {
    let server = TestServer::start(&["--max-line-bytes", &MAX_LINE.to_string()]);
    let fds = server.open_fds();
    // Warm up what any traffic allocates once (store, read buffer), so that
    // the baseline is a server that has served.
    assert_eq!(
        exchange(&mut server.connect(), b"put warm 1 1\nget warm\n", 2),
        "ok\n\nok\nwarm 1.0 1\n\n"
    );
    wait_for_fds(&server, fds);
    let baseline = server.rss_kib();

    let kept_at_close: usize = thread::scope(|scope| {
        let server = &server;
        let workers: Vec<_> = (1..=THREADS)
            .map(|seed| scope.spawn(move || hostile_thread(server, seed)))
            .collect();
        workers.into_iter().map(|w| w.join().expect("hostile thread")).sum()
    });

    // This is what makes the memory check below able to fail: a server that
    // kept what closed connections held (their slots, or only their input
    // buffers) would keep at least the partial lines they were closed in
    // the middle of, and those alone are well over the bound. Tried on a
    // scratch copy of the server: with each connection's kept input leaked
    // when it is dropped, this test failed with 38 MiB of growth (about 2 MiB
    // without the leak); with closed connections leaked whole, it failed
    // on the descriptor count.
    assert!(
        kept_at_close as u64 / 1024 > 2 * RSS_BOUND_KIB,
        "the plan leaves only {kept_at_close} bytes in partial lines"
    );
    wait_for_fds(&server, fds);
    let grown = server.rss_kib().saturating_sub(baseline);
    eprintln!(
        "partial lines at close: {} KiB; RSS growth: {grown} KiB",
        kept_at_close / 1024
    );
    assert!(
        grown < RSS_BOUND_KIB,
        "server grew by {grown} KiB (baseline {baseline} KiB) after {} hostile connections",
        THREADS as usize * CONNECTIONS_PER_THREAD
    );

    let mut s = server.connect();
    assert_eq!(exchange(&mut s, b"put after.hostile -0.5 7\n", 1), OK);
    assert_eq!(
        exchange(&mut s, b"get after.hostile\n", 1),
        "ok\nafter.hostile -0.5 7\n\n"
    );
    check_get(&exchange(&mut s, b"get *\n", 1).into_bytes(), None);
    assert!(!server.log().contains("panicked"), "log: {}", server.log());
}

/// Waits until the server holds `fds` descriptors again, that is, until it
/// has closed every connection it was serving. Closes are asynchronous, so
/// this polls, for as long as a read may block; the assertion is on the
/// count, never on the time.
fn wait_for_fds(server: &TestServer, fds: usize) {
    if poll_until(IO_TIMEOUT, || (server.open_fds() == fds).then_some(())).is_none() {
        assert_eq!(
            server.open_fds(),
            fds,
            "descriptors still open after the hostile connections closed"
        );
    }
}

/// One thread's connections; returns how many bytes of partial lines its
/// resets and closes left the server holding at the moment they closed.
fn hostile_thread(server: &TestServer, seed: u64) -> usize {
    let mut rng = XorShift::seeded(seed);
    let mut kept = 0;
    for n in 0..CONNECTIONS_PER_THREAD {
        let plan = plan(&mut rng);
        let context = format!("seed {seed}, connection {n}, {:?}", plan.end);
        let s = server.connect();
        s.set_nodelay(true).unwrap();
        if plan.end == End::HalfClose {
            half_close(s, &plan, &mut rng, &context);
        } else {
            let written = write_until_blocked(&s, &plan.bytes, &mut rng);
            kept += written.saturating_sub(plan.partial_from);
            if plan.end == End::Reset {
                SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
            }
        }
    }
    kept
}

/// Random request traffic, ending in a long partial line when the server is
/// to be left holding one.
fn plan(rng: &mut XorShift) -> Plan {
    let end = pick(rng, &[End::HalfClose, End::Reset, End::Close]);
    let mut bytes = Vec::new();
    for _ in 0..rng.below(120) {
        random_line(rng, &mut bytes);
    }
    let partial_from = bytes.len();
    if end != End::HalfClose && rng.below(8) > 0 {
        // Half the limit to just under it, so that all of it is kept.
        let len = MAX_LINE / 2 + rng.below(MAX_LINE as u64 / 2 - 100) as usize;
        random_bytes(rng, &mut bytes, len);
        let tail = &mut bytes[partial_from..];
        tail.iter_mut().filter(|b| **b == b'\n').for_each(|b| *b = b'x');
    }
    Plan {
        bytes,
        end,
        partial_from,
    }
}

/// Appends one random line and its ending.
fn random_line(rng: &mut XorShift, out: &mut Vec<u8>) {
    let key = pick(rng, &KEYS);
    let blank = |rng: &mut XorShift| pick(rng, &[" ", "  ", "\t", " \t "]);
    if rng.below(200) == 0 {
        // Overlong, sometimes by one byte only.
        let over = if rng.below(2) == 0 {
            0
        } else {
            rng.below(MAX_LINE as u64) as usize
        };
        let len = MAX_LINE + 1 + over;
        out.resize(out.len() + len, b'o');
    } else {
        match rng.below(19) {
            0..=5 => {
                let value = pick(rng, &VALUES);
                let timestamp = rng.below(80) as i64 - 16;
                let line = format!("put{}{key} {value}{}{timestamp}", blank(rng), blank(rng));
                out.extend_from_slice(line.as_bytes());
            }
            6 => out.extend_from_slice(format!("get {key}").as_bytes()),
            7 if rng.below(2) == 0 => out.extend_from_slice(b"get *"),
            7 => {
                let target = if rng.below(3) == 0 { "*" } else { key };
                let from = rng.below(80) as i64 - 20;
                let to = from + rng.below(40) as i64;
                let mut line = format!("range {target} {from} {to}");
                if rng.below(2) == 0 {
                    let agg = pick(rng, &["avg", "min", "max", "sum", "count", "last"]);
                    line += &format!(" {} {agg}", 1 + rng.below(12));
                }
                out.extend_from_slice(line.as_bytes());
            }
            8..=11 => out.extend_from_slice(pick(rng, &INVALID)),
            12 => out.extend_from_slice(blank(rng).as_bytes()),
            _ => {
                let len = rng.below(300) as usize;
                random_bytes(rng, out, len);
            }
        }
    }
    out.extend_from_slice(pick(rng, &[&b"\n"[..], b"\r\n"]));
}

/// One of `items`, chosen by `rng`.
fn pick<T: Copy>(rng: &mut XorShift, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

fn random_bytes(rng: &mut XorShift, out: &mut Vec<u8>, len: usize) {
    out.extend((0..len).map(|_| rng.next() as u8));
}

/// The size of the next piece to write: often tiny, sometimes large.
fn piece_len(rng: &mut XorShift) -> usize {
    let most = pick(rng, &[8, 300, 20_000]);
    1 + rng.below(most) as usize
}

/// Writes all of `plan` in random pieces while another thread reads, then
/// half-closes and checks every answer up to the server's close.
fn half_close(s: TcpStream, plan: &Plan, rng: &mut XorShift, context: &str) {
    let mut reader = s.try_clone().unwrap();
    let answers = thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).map(|_| got)
    });
    let mut writer = s;
    let mut rest = &plan.bytes[..];
    while !rest.is_empty() {
        let (piece, next) = rest.split_at(piece_len(rng).min(rest.len()));
        writer
            .write_all(piece)
            .unwrap_or_else(|e| panic!("{context}: write: {e}"));
        rest = next;
    }
    writer.shutdown(Shutdown::Write).unwrap();
    let got = answers
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{context}: reading answers: {e}"));
    check_answers(&got, &expected_answers(&plan.bytes), context);
}

/// Writes `bytes` in random pieces without blocking, stopping early where the
/// server stops reading (it throttles a peer whose answers pile up); now and
/// then reads a little of what came back. Returns how many bytes went out.
fn write_until_blocked(s: &TcpStream, bytes: &[u8], rng: &mut XorShift) -> usize {
    s.set_nonblocking(true).unwrap();
    let mut s = s;
    let mut written = 0;
    while written < bytes.len() {
        let end = (written + piece_len(rng)).min(bytes.len());
        match s.write(&bytes[written..end]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
        if rng.below(8) == 0 {
            let _ = s.read(&mut [0; 512]);
        }
    }
    written
}

/// The answers to `bytes`, as the protocol module frames and parses them.
/// The unterminated line at the end gets none (unless it is already too
/// long): it is dropped at the close.
fn expected_answers(bytes: &[u8]) -> Vec<Expected> {
    let mut framer = LineFramer::new(MAX_LINE);
    let mut rest = bytes;
    let mut expected = Vec::new();
    loop {
        let (framed, used) = framer.next(rest);
        rest = &rest[used..];
        match framed {
            Framed::Line(line) => match parse_line(line) {
                Ok(None) => {}
                Ok(Some(Request::Put { .. } | Request::Delete { .. })) => expected.push(Expected::Ok),
                Ok(Some(Request::Get(Query::All))) => expected.push(Expected::Get(None)),
                Ok(Some(Request::Get(Query::Key(key)))) => expected.push(Expected::Get(Some(key.to_owned()))),
                Ok(Some(Request::Stats)) => expected.push(Expected::Stats),
                // Read like a get: points (or buckets) of the asked keys, in order.
                Ok(Some(Request::Range(range))) => expected.push(Expected::Get(match range.query {
                    Query::All => None,
                    Query::Key(key) => Some(key.to_owned()),
                })),
                Err(_) => expected.push(Expected::Error),
            },
            Framed::TooLong => expected.push(Expected::Error),
            Framed::Incomplete => return expected,
        }
    }
}

/// `got` is exactly the `expected` answers, in order, and nothing more.
fn check_answers(got: &[u8], expected: &[Expected], context: &str) {
    let mut scanner = ResponseScanner::new();
    let mut rest = got;
    for (i, want) in expected.iter().enumerate() {
        let Some(len) = scanner.check(rest) else {
            panic!("{context}: {} of {} answers, then the close", i, expected.len());
        };
        let (answer, next) = rest.split_at(len);
        match want {
            Expected::Ok => assert_eq!(answer, OK.as_bytes(), "{context}: answer {i}"),
            Expected::Error => assert_eq!(answer, ERR.as_bytes(), "{context}: answer {i}"),
            Expected::Get(key) => check_get(answer, key.as_deref()),
            Expected::Stats => assert!(answer.starts_with(b"ok\nuptime_seconds "), "{context}: answer {i}"),
        }
        rest = next;
    }
    assert!(rest.is_empty(), "{context}: bytes after the last answer: {rest:?}");
}

/// A get (or range) answer: `ok` and points of the asked key (or of any key in
/// ascending order, for `*`), each key's timestamps strictly ascending.
fn check_get(answer: &[u8], key: Option<&str>) {
    let text = String::from_utf8_lossy(answer);
    let Ok(response @ Response::Ok { .. }) = parse_response(answer) else {
        panic!("not an ok answer to a get: {text:?}");
    };
    let mut last: Option<(&str, i64)> = None;
    for point in response.points() {
        let point = point.unwrap_or_else(|e| panic!("{e} in {text:?}"));
        assert!(key.is_none_or(|k| k == point.key), "{text:?} for get {key:?}");
        assert!(
            last.is_none_or(|last| last < (point.key, point.timestamp)),
            "{text:?} out of order"
        );
        last = Some((point.key, point.timestamp));
    }
}
