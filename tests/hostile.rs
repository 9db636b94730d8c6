//! Hostile and broken peers: bad input costs nothing but its own error
//! answer, memory stays bounded, and nobody else is stalled.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

/// Writes `total` bytes of `fill` (no `\n`) in 64 KiB pieces.
fn write_filler(s: &mut TcpStream, total: usize, fill: u8) {
    let piece = vec![fill; 64 * 1024];
    let mut left = total;
    while left > 0 {
        let n = left.min(piece.len());
        s.write_all(&piece[..n]).unwrap();
        left -= n;
    }
}

#[test]
fn sixteen_mib_line_without_newline_is_never_buffered() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    let mut other = server.connect();
    assert_eq!(exchange(&mut s, b"put k 1 1\n", 1), OK);
    let before = server.rss_kib();
    write_filler(&mut s, 16 * MIB, b'x');
    // The error comes as soon as the line passes the limit, once.
    assert_eq!(read_answers(&mut s, 1), ERR);
    // Others are served meanwhile.
    assert_eq!(exchange(&mut other, b"get k\n", 1), "ok\nk 1.0 1\n\n");
    let grown = server.rss_kib().saturating_sub(before);
    assert!(grown < 4 * 1024, "server grew by {grown} KiB for a 16 MiB line");
    // More of the same line, then its end and a valid request.
    write_filler(&mut s, MIB, b'y');
    assert_eq!(exchange(&mut s, b"zzz\nget k\n", 1), "ok\nk 1.0 1\n\n");
    assert_silent(&mut s);
}

#[test]
fn overlong_lines_at_the_limit() {
    let server = TestServer::start(&["--max-line-bytes", "32"]);
    let mut s = server.connect();
    // 32 bytes before the `\n` (the `\r` counts) is allowed, 33 is not.
    let key31 = "k".repeat(32 - "get ".len() - 1);
    let at_limit = format!("put {} 1 1\n", "p".repeat(32 - "put ".len() - " 1 1".len()));
    assert_eq!(at_limit.len(), 33);
    assert_eq!(exchange(&mut s, at_limit.as_bytes(), 1), OK);
    assert_eq!(exchange(&mut s, format!("get {key31}\r\n").as_bytes(), 1), OK);
    let over = format!("put {} 1 1\n", "p".repeat(33 - "put ".len() - " 1 1".len()));
    assert_eq!(exchange(&mut s, over.as_bytes(), 1), ERR);
    // An overlong line arriving in many small pieces gets exactly one error.
    s.set_nodelay(true).unwrap();
    for _ in 0..20 {
        s.write_all(b"0123456789").unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(exchange(&mut s, b"\nget nothing\n", 2), format!("{ERR}{OK}"));
    // Several overlong lines and good ones pipelined in one write.
    let long = "x".repeat(100);
    let batch = format!("{long}\nget a\n{long}{long}\n{long}\nget a\n");
    assert_eq!(exchange(&mut s, batch.as_bytes(), 5), [ERR, OK, ERR, ERR, OK].concat());
    assert_silent(&mut s);
}

const STATS: &[u8] = b"stats\n";

/// The server's `bytes.in` figure, asked on `s` (the request included).
fn bytes_in(s: &mut TcpStream) -> u64 {
    let answer = exchange(s, STATS, 1);
    let figure = answer
        .lines()
        .find_map(|l| l.strip_prefix("bytes.in "))
        .expect("bytes.in");
    figure.parse().expect("a number")
}

#[test]
fn client_that_never_reads_is_throttled() {
    let server = TestServer::start(&["--max-pending-output", "65536"]);
    let mut setup = server.connect();
    let puts: String = (0..100).map(|i| format!("put heavy {i}.125 {i}\n")).collect();
    assert_eq!(exchange(&mut setup, puts.as_bytes(), 100), OK.repeat(100));
    let before = server.rss_kib();

    // Up to 50 MB of pipelined gets (5M of them, about 10 GB of answers); the
    // reader never reads. Loopback socket buffers absorb about 10 MB each way,
    // so the writer only stalls well below the cap if the server stops
    // reading its socket.
    let mut hog = server.connect();
    hog.set_nonblocking(true).unwrap();
    let request = b"get heavy\n".repeat(1000);
    const CAP: usize = 50 * MIB;
    let mut sent = 0usize;
    let deadline = Instant::now() + IO_TIMEOUT;
    while sent < CAP {
        match hog.write(&request) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                // Blocked. Stopped once the server is seen not reading us:
                // between two stats round trips (a loop turn at least) its
                // bytes in grew by the second request only.
                let first = bytes_in(&mut setup);
                if bytes_in(&mut setup) == first + STATS.len() as u64 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the server went on reading a non-reader ({sent} bytes sent)"
                );
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(sent < CAP, "the server read everything a non-reader sent");
    // Others are not slowed down: a full round trip works.
    let mut other = server.connect();
    for _ in 0..10 {
        assert!(exchange(&mut other, b"get heavy\n", 1).starts_with("ok\nheavy 0.125 0\n"));
    }
    let grown = server.rss_kib().saturating_sub(before);
    assert!(
        grown < 8 * 1024,
        "server grew by {grown} KiB for a client that never reads"
    );
    // Now the hog reads: it gets whole, ordered answers, then it goes away
    // with answers still pending.
    hog.set_nonblocking(false).unwrap();
    hog.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let one = exchange(&mut other, b"get heavy\n", 1);
    let mut got = vec![0u8; 50 * one.len()];
    hog.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), one.repeat(50));
    drop(hog);
    server.assert_serves();
}

#[test]
fn resets_with_answers_pending() {
    let mut server = TestServer::start(&[]);
    let mut setup = server.connect();
    let puts: String = (0..2000).map(|i| format!("put r {i} {i}\n")).collect();
    assert_eq!(exchange(&mut setup, puts.as_bytes(), 2000), OK.repeat(2000));
    let before = server.rss_kib();
    for round in 0..50 {
        let mut s = server.connect();
        s.write_all(&b"get r\n".repeat(20)).unwrap();
        if round % 2 == 0 {
            // Let some answers arrive unread: closing then sends a reset.
            let mut b = [0u8; 16];
            s.read_exact(&mut b).unwrap();
        }
        drop(s);
    }
    // Half a line, then gone.
    let mut s = server.connect();
    s.write_all(b"put half").unwrap();
    drop(s);
    assert!(server.is_running());
    server.assert_serves();
    assert_eq!(exchange(&mut setup, b"get half\n", 1), OK);
    // What the gone connections had pending went with them.
    let grown = server.rss_kib().saturating_sub(before);
    assert!(grown < 8 * 1024, "server grew by {grown} KiB after 50 resets");
}

#[test]
fn stalled_half_line_does_not_block_others() {
    let server = TestServer::start(&[]);
    let before = server.rss_kib();
    // Many stalled half-lines: each costs only its own bytes.
    let mut stalled: Vec<TcpStream> = (0..100).map(|_| server.connect()).collect();
    for s in &mut stalled {
        s.write_all(&[b'x'; 1000]).unwrap();
    }
    let mut slow = server.connect();
    slow.set_nodelay(true).unwrap();
    slow.write_all(b"put slow.key 1").unwrap();
    let mut fast = server.connect();
    for i in 0..100 {
        assert_eq!(exchange(&mut fast, format!("put fast {i} {i}\n").as_bytes(), 1), OK);
    }
    assert_eq!(exchange(&mut fast, b"get slow.key\n", 1), OK);
    assert_silent(&mut slow);
    assert_eq!(
        exchange(&mut slow, b"5 7\nget slow.key\n", 2),
        format!("{OK}ok\nslow.key 15.0 7\n\n")
    );
    let grown = server.rss_kib().saturating_sub(before);
    assert!(
        grown < 4 * 1024,
        "server grew by {grown} KiB for 100 stalled half-lines"
    );
    for s in &mut stalled {
        assert_eq!(exchange(s, b"\n", 1), ERR);
    }
}

#[test]
fn garbage_bytes_get_errors_not_a_close() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    // Every byte value, including NUL, DEL and invalid UTF-8, in lines.
    let mut garbage = Vec::new();
    let mut lines = 0;
    for b in 0u8..=255 {
        if b == b'\n' {
            continue;
        }
        garbage.extend_from_slice(&[b, b, b'z', b, b'\n']);
        lines += 1;
    }
    s.write_all(&garbage).unwrap();
    s.write_all(b"get k\n").unwrap();
    let got = read_answers(&mut s, lines + 1);
    assert_eq!(got, format!("{}{OK}", ERR.repeat(lines)));
    assert_silent(&mut s);
}

#[test]
fn connections_over_the_limit_are_closed_at_once() {
    let server = TestServer::start(&["--max-connections", "5"]);
    let mut held: Vec<TcpStream> = (0..5).map(|_| server.connect()).collect();
    for s in &mut held {
        assert_eq!(exchange(s, b"get x\n", 1), OK);
    }
    let mut extra = server.connect();
    let _ = extra.write_all(b"get x\n");
    assert!(
        read_to_close_or_reset(&mut extra).is_empty(),
        "connection over the limit was served"
    );
    // Room again once one goes away.
    drop(held.pop());
    wait_until("a slot to become free", || {
        let mut s = server.connect();
        let _ = s.write_all(b"get x\n");
        read_to_close_or_reset_or_answer(&mut s) == OK
    });
    // The warning reaches the log through a thread that copies the
    // server's stderr: it may come after the answers did.
    wait_until("the connection limit in the log", || {
        server.log().contains("connection limit (5) reached")
    });
}

#[test]
fn out_of_file_descriptors_sheds_connections_and_keeps_serving() {
    // A descriptor limit of 48 leaves room for about 40 connections.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -n 48 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_metricsd"),
    ]);
    let server = TestServer::start_with(cmd, &[]);
    let mut open = Vec::new();
    let mut shed = 0;
    for _ in 0..80 {
        let mut s = server.connect();
        s.write_all(b"get fd\n").unwrap();
        let got = read_to_close_or_reset_or_answer(&mut s);
        if got == OK {
            open.push(s);
        } else {
            assert!(got.is_empty(), "{got:?}");
            shed += 1;
        }
    }
    assert!(open.len() >= 30 && shed >= 30, "served {} shed {shed}", open.len());
    // Shedding left nothing spinning: over a second of idleness the server
    // uses a small fraction of a CPU (a busy loop would use all of it).
    let ticks = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_ticks() - ticks;
    assert!(used < 20, "server used {used} ticks of CPU while idle");
    // The ones it kept still work, and once some close, new ones are served.
    for s in &mut open {
        assert_eq!(exchange(s, b"get fd\n", 1), OK);
    }
    open.truncate(open.len() - 10);
    wait_until("a new connection to be served", || {
        let mut s = server.connect();
        let _ = s.write_all(b"get fd\n");
        read_to_close_or_reset_or_answer(&mut s) == OK
    });
    // Through the thread that copies the server's stderr, as above.
    wait_until("the shortage in the log", || {
        server.log().contains("out of file descriptors")
    });
}

/// Reads until the peer closes or resets; the bytes that came first.
fn read_to_close_or_reset(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("expected a close, got {e}"),
        }
    }
}

/// One whole answer if the server serves us, or "" if it closed on us.
fn read_to_close_or_reset_or_answer(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 256];
    while !out.ends_with(b"\n\n") {
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("expected an answer or a close, got {e}"),
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn deep_pipeline_does_not_starve_others() {
    // Liveness: while a hog streams 2M pipelined puts (about 40 MB) and reads
    // its answers, another client's get is answered before the hog's puts
    // are all stored. (Over loopback, short reads make even a server that
    // serves a socket until it runs dry yield now and then, so the bound on
    // one connection's slice per turn is proven by the unit test
    // `one_read_per_service_call` in src/server/connection.rs.)
    const PUTS: usize = 2_000_000;
    let server = TestServer::start(&[]);
    let hog = server.connect();
    let mut hog_reader = hog.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        while total < PUTS * OK.len() {
            let n = hog_reader.read(&mut buf).unwrap();
            assert!(n > 0, "server closed the hog");
            total += n;
        }
    });
    // Made up front, so the hog writes at memory speed.
    let puts: String = (0..PUTS).map(|i| format!("put hog 0.5 {i}\n")).collect();
    let mut hog_writer = hog;
    let writer = std::thread::spawn(move || hog_writer.write_all(puts.as_bytes()).unwrap());
    // Wait until the hog's puts are being stored, then ask for them.
    let mut other = server.connect();
    let stored = wait_for("the hog's first puts", || {
        let answer = exchange(&mut other, b"get hog\n", 1);
        Some(answer.lines().count() - 1).filter(|&points| points > 0)
    });
    assert!(
        stored < PUTS,
        "the other client waited for the whole pipeline of the hog"
    );
    writer.join().unwrap();
    reader.join().unwrap();
}

#[test]
fn command_line_errors_are_one_line_and_exit_non_zero() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_metricsd"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stderr).unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };
    let server = TestServer::start(&[]);
    let taken = server.addr.to_string();
    let (code, err, _) = run(&["--in-memory", "--listen", &taken]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("Address already in use") && err.lines().count() == 1,
        "{err}"
    );
    for bad in [
        &["--bogus"][..],
        &["--max-line-bytes", "2"],
        &["--max-connections", "x"],
        &["--listen"],
        &["--fsync", "sometimes"],
        &["--in-memory", "--data-dir", "x"],
        &["--compact-min-bytes", "-1"],
        &["--retention", "0.5"],
        &["--retention", "1y"],
        &["--max-memory", "1.5GiB"],
        &["--on-memory-full", "sometimes"],
        &["--on-memory-full", "drop-oldest"],
    ] {
        let (code, err, _) = run(bad);
        assert_eq!(code, Some(2), "{bad:?}");
        assert!(
            err.starts_with("metricsd: ") && err.lines().count() == 1,
            "{bad:?}: {err}"
        );
    }
    let (code, _, out) = run(&["--version"]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), concat!("metricsd ", env!("CARGO_PKG_VERSION")))
    );
    let (code, _, out) = run(&["--help"]);
    assert!(code == Some(0) && out.contains("--max-pending-output"));
}

#[test]
fn big_answers_to_clients_that_never_read_stay_bounded() {
    // One answer can be the whole store: it is written in slices while the
    // connection's output is under the limit, never built whole.
    let server = TestServer::start(&["--max-pending-output", "65536"]);
    let key = "k".repeat(60_000);
    let mut setup = server.connect();
    let puts: String = (0..300).map(|i| format!("put {key} {i} {i}\n")).collect();
    assert_eq!(exchange(&mut setup, puts.as_bytes(), 300), OK.repeat(300));
    let before = server.rss_kib();
    // Each `get *` answer is 18 MB; ten connections ask for 50 each and
    // never read (900 MB of answers if they were built whole).
    let mut hogs: Vec<TcpStream> = (0..10).map(|_| server.connect()).collect();
    for hog in &mut hogs {
        hog.write_all(&b"get *\n".repeat(50)).unwrap();
    }
    // The server has begun answering every hog...
    for (i, hog) in hogs.iter().enumerate() {
        hog.peek(&mut [0])
            .unwrap_or_else(|e| panic!("no answer for hog {i}: {e}"));
    }
    // ...and has had loop turns to do all it would do: round trips on a
    // connection served after every hog's requests arrived.
    for _ in 0..20 {
        assert_eq!(exchange(&mut setup, b"get nothing\n", 1), OK);
    }
    let grown = server.rss_kib().saturating_sub(before);
    assert!(
        grown < 16 * 1024,
        "server grew by {grown} KiB for 10 clients that never read"
    );
    // A hog that starts reading gets whole answers, in order.
    let one = exchange(&mut setup, b"get *\n", 1);
    assert!(one.starts_with("ok\n") && one.ends_with("\n\n") && one.lines().count() == 302);
    assert!(one.len() > 18_000_000);
    let mut got = vec![0u8; 2 * one.len()];
    hogs[0].read_exact(&mut got).unwrap();
    assert_eq!(got, one.repeat(2).into_bytes());
    drop(hogs);
    server.assert_serves();
}

/// One figure of the server's `stats` answer.
fn figure(s: &mut TcpStream, name: &str) -> u64 {
    let answer = exchange(s, STATS, 1);
    let value = (answer.lines())
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no figure {name} in {answer}"));
    value.parse().expect("a number")
}

#[test]
fn non_readers_of_big_answers_share_a_bounded_output_memory_and_others_are_served() {
    const LIMIT: u64 = MIB as u64;
    const HOGS: usize = 8;
    // What every connection may always hold (the server's 64 KiB), plus the
    // one data line an answer may pass a bound by.
    const PER_CONNECTION: u64 = 64 * 1024 + 60_100;
    let server = TestServer::start(&["--max-output-memory", "1MiB"]);
    let key = "k".repeat(60_000);
    let mut setup = server.connect();
    let puts: String = (0..200).map(|i| format!("put {key} {i} {i}\n")).collect();
    assert_eq!(exchange(&mut setup, puts.as_bytes(), 200), OK.repeat(200));
    let one = exchange(&mut setup, b"get *\n", 1);
    assert!(one.len() > 12_000_000);
    // Each hog's answer is 12 MB, three times what its own limit (4 MiB)
    // lets it pin, and far more than the kernel's socket buffers take.
    let mut hogs: Vec<TcpStream> = (0..HOGS).map(|_| server.connect()).collect();
    for hog in &mut hogs {
        hog.write_all(b"get *\n").unwrap();
    }
    for (i, hog) in hogs.iter().enumerate() {
        hog.peek(&mut [0])
            .unwrap_or_else(|e| panic!("no answer for hog {i}: {e}"));
    }
    // The memory ran out and hogs wait for it...
    wait_until("a hog to wait for output memory", || {
        figure(&mut setup, "output.memory_waits") > 0
    });
    // ...and with every hog's work done that it can do, the total holds.
    let connections = HOGS as u64 + 2;
    let bound = LIMIT + connections * PER_CONNECTION;
    for _ in 0..20 {
        let pending = figure(&mut setup, "output.pending_bytes");
        assert!(pending <= bound, "{pending} unsent bytes, bound {bound}");
    }
    assert_eq!(figure(&mut setup, "output.memory_limit_bytes"), LIMIT);
    // Short answers to a new client are not held up by it (the key sorts
    // before every hog's place, so their answers stay as they were).
    let mut fresh = server.connect();
    assert_eq!(
        exchange(&mut fresh, b"put a.fresh 1 1\nget a.fresh\n", 2),
        "ok\n\nok\na.fresh 1.0 1\n\n"
    );
    // Every hog that reads at last gets its whole answer, exactly.
    for (i, hog) in hogs.iter_mut().enumerate() {
        let mut got = vec![0u8; one.len()];
        hog.read_exact(&mut got).unwrap();
        assert!(got == one.as_bytes(), "hog {i}'s answer differs");
    }
    wait_until("all answers sent", || figure(&mut setup, "output.pending_bytes") == 0);
    server.assert_serves();
}

#[test]
fn urgent_data_does_not_strand_requests() {
    // A read stops at TCP's urgent mark (telnet's Synch sends urgent data),
    // so a short read there does not mean the socket is drained: the
    // requests behind the mark must be answered without a new edge.
    let server = TestServer::start(&[]);
    let script = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(20)
# Corked, so the three sends reach the server as one segment: one edge,
# with requests on both sides of the urgent mark.
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
s.send(b"get a\n")
s.send(b"!", socket.MSG_OOB)
s.send(b"get b\nget c\n")
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
want = b"ok\n\n" * 3
got = b""
while len(got) < len(want):
    chunk = s.recv(100)
    if not chunk:
        break
    got += chunk
print(repr(got))
sys.exit(0 if got == want else 1)
"#;
    let out = Command::new("python3")
        .args(["-c", script, &server.addr.port().to_string()])
        .output()
        .expect("python3 is needed for this test");
    assert!(
        out.status.success(),
        "requests stranded behind urgent data: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The HTTP API's address, from the server's log.
fn http_addr(server: &TestServer) -> std::net::SocketAddr {
    wait_for("the HTTP address in the log", || {
        (server.log().lines())
            .find_map(|l| l.strip_prefix("HTTP API and page on http://"))
            .and_then(|rest| rest.trim_end_matches('/').parse().ok())
    })
}

/// Sends one HTTP request (that asks the server to close) on a fresh
/// connection to `http`, and reads the answer to the close.
fn http_exchange(http: std::net::SocketAddr, request: &[u8]) -> String {
    let mut web = TcpStream::connect(http).unwrap();
    web.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    web.write_all(request).unwrap();
    let mut answer = String::new();
    web.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn non_readers_of_big_renders_hold_no_more_than_the_output_memory_and_others_are_served() {
    const LIMIT: u64 = MIB as u64;
    const HOGS: usize = 20;
    // What every connection may always hold (64 KiB) plus the slice of a
    // turn an answer may pass it by (256 KiB and one datapoint).
    const PER_CONNECTION: u64 = 64 * 1024 + 256 * 1024 + 100;
    // One answer's series, admitted while there was room: 1.9 million
    // slots of 16 bytes.
    const ONE_ANSWER: u64 = 1_900_000 * 16 + 4096;
    let server = TestServer::start(&["--http-listen", "127.0.0.1:0", "--max-output-memory", "1MiB"]);
    let http = http_addr(&server);
    let mut setup = server.connect();
    // Two points 1 s apart: a step of 1 s, so a render over 1.9 million
    // seconds is 1.9 million slots (30 MB held, 32 MB of JSON), far more
    // than the kernel's socket buffers take.
    assert_eq!(exchange(&mut setup, b"put big 1 0\nput big 2 1\n", 2), OK.repeat(2));
    let before = server.rss_kib();
    let render = b"GET /render?target=big&from=0&until=1900000&format=json HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut hogs: Vec<TcpStream> = (0..HOGS).map(|_| TcpStream::connect(http).unwrap()).collect();
    for hog in &mut hogs {
        hog.write_all(render).unwrap();
    }
    // One render is evaluated and holds its series; every other waits,
    // read but not evaluated.
    wait_until("the other hogs to wait for output memory", || {
        figure(&mut setup, "output.memory_waits") >= HOGS as u64 - 1
    });
    let connections = HOGS as u64 + 2;
    let bound = LIMIT + ONE_ANSWER + connections * PER_CONNECTION;
    for _ in 0..20 {
        let pending = figure(&mut setup, "output.pending_bytes");
        assert!(pending <= bound, "{pending} bytes unsent or held, bound {bound}");
        assert!(pending > LIMIT, "{pending} bytes: the answer's series are not counted");
    }
    // RSS: the bound, the evaluation of the one answer (its fetch and its
    // series, 30 MB each at most) and slack for the allocator; without the
    // bound, 20 hogs held 600 MB.
    let grown = server.rss_kib().saturating_sub(before);
    assert!(
        grown < (bound + ONE_ANSWER) / 1024 + 16 * 1024,
        "server grew by {grown} KiB for {HOGS} clients that never read"
    );
    // Others are served: a course get, and HTTP answers that hold nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut fresh = server.connect();
    assert_eq!(exchange(&mut fresh, b"get big\n", 1), "ok\nbig 1.0 0\nbig 2.0 1\n\n");
    let answer = http_exchange(http, b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\n1.1.10"),
        "{answer}"
    );
    assert!(Instant::now() < deadline, "others were held up");
    // The hogs go: their memory is freed, and a render is answered again.
    drop(hogs);
    wait_until("the hogs' memory freed", || {
        figure(&mut setup, "output.pending_bytes") == 0
    });
    let answer = http_exchange(
        http,
        b"GET /render?target=big&from=0&until=2&format=json HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let body = r#"[{"target": "big", "tags": {"name": "big"}, "datapoints": [[2.0, 1], [null, 2]]}]"#;
    assert!(answer.ends_with(&format!("\r\n\r\n{body}")), "{answer}");
    server.assert_serves();
}
