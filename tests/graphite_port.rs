//! The Graphite plaintext port over real sockets: TCP streams from several
//! clients, UDP datagrams, over-long lines and garbage, the limits every
//! connection has, and points that survive a restart.

mod common;

use common::{exchange, wait_until, TempDir, TestServer, IO_TIMEOUT};
use metricsd::Client;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A server with the Graphite port on a free port, and that port.
fn start(extra: &[&str]) -> (TestServer, SocketAddr) {
    let mut args = vec!["--graphite-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = TestServer::start(&args);
    let addr = graphite_addr(&server);
    (server, addr)
}

/// The Graphite port, from the line the server writes before `listening on`.
fn graphite_addr(server: &TestServer) -> SocketAddr {
    let log = server.log();
    let line = log
        .lines()
        .find_map(|l| l.strip_prefix("graphite listening on "))
        .unwrap_or_else(|| panic!("no graphite port in the log: {log}"));
    let addr = line.strip_suffix(" (tcp and udp)").expect("both transports");
    addr.parse().expect("an address")
}

fn client(server: &TestServer) -> Client {
    Client::new("127.0.0.1", server.addr.port(), Some(IO_TIMEOUT)).expect("connect")
}

fn figure(client: &mut Client, name: &str) -> u64 {
    let stats = client.stats().expect("stats");
    let (_, value) = stats
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no figure {name}"));
    value.parse().expect("an integer")
}

/// Waits until the figure `name` reaches `want` (it only grows).
fn wait_for_figure(client: &mut Client, name: &str, want: u64) {
    let mut last = 0;
    wait_until(&format!("{name} to reach {want}"), || {
        last = figure(client, name);
        assert!(last <= want, "{name} went past {want}: {last}");
        last == want
    });
}

/// Graphite lines skipped so far, all causes together.
fn skipped_lines(client: &mut Client) -> u64 {
    let stats = client.stats().expect("stats");
    (stats.iter())
        .filter(|(name, _)| name.starts_with("graphite.errors."))
        .map(|(_, value)| value.parse::<u64>().expect("an integer"))
        .sum()
}

fn graphite_tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the graphite port");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// What `get key` answers.
fn get(server: &TestServer, key: &str) -> String {
    let mut s = server.connect();
    exchange(&mut s, format!("get {key}\n").as_bytes(), 1)
}

#[test]
fn pipelined_streams_from_several_clients_are_all_stored() {
    let (server, addr) = start(&[]);
    const CLIENTS: usize = 4;
    const LINES: usize = 5000;
    let senders: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = graphite_tcp(addr);
                let stream: String = (0..LINES)
                    .map(|i| format!("tcp.c{c}\t{i}.5  {}\r\n", 1_000_000 + i))
                    .collect();
                // Odd-sized writes, so lines are cut anywhere.
                for chunk in stream.as_bytes().chunks(4093) {
                    s.write_all(chunk).expect("write");
                }
                s.shutdown(std::net::Shutdown::Write).expect("shutdown");
                // The server never answers: the next thing is its close.
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).expect("read to the close");
                rest
            })
        })
        .collect();
    for sender in senders {
        assert_eq!(sender.join().expect("sender"), b"", "the graphite port answered");
    }
    let mut client = client(&server);
    wait_for_figure(&mut client, "graphite.points", (CLIENTS * LINES) as u64);
    for c in 0..CLIENTS {
        let got = client.get(&format!("tcp.c{c}")).expect("get");
        let want: Vec<(i64, f64)> = (0..LINES).map(|i| (1_000_000 + i as i64, i as f64 + 0.5)).collect();
        assert_eq!(got[&format!("tcp.c{c}")], want, "client {c}");
    }
    assert_eq!(get(&server, "tcp.c0").lines().nth(1), Some("tcp.c0 0.5 1000000"));
}

#[test]
fn udp_datagrams_are_stored_with_or_without_their_last_newline() {
    let (server, addr) = start(&[]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    const DATAGRAMS: usize = 50;
    for d in 0..DATAGRAMS {
        let mut body: String = (0..10).map(|i| format!("udp.d{d} {i} {i}\n")).collect();
        if d % 2 == 0 {
            body.pop();
        }
        body.insert_str(0, "garbage\n");
        socket.send_to(body.as_bytes(), addr).expect("send");
    }
    let mut client = client(&server);
    wait_for_figure(&mut client, "graphite.datagrams", DATAGRAMS as u64);
    assert_eq!(figure(&mut client, "graphite.points"), (DATAGRAMS * 10) as u64);
    assert_eq!(
        figure(&mut client, "graphite.errors.wrong_field_count"),
        DATAGRAMS as u64
    );
    let want: String = (0..10).map(|i| format!("udp.d7 {i}.0 {i}\n")).collect();
    assert_eq!(get(&server, "udp.d7"), format!("ok\n{want}\n"));
    let want: String = (0..10).map(|i| format!("udp.d8 {i}.0 {i}\n")).collect();
    assert_eq!(get(&server, "udp.d8"), format!("ok\n{want}\n"));
}

#[test]
fn an_over_long_line_is_skipped_and_the_lines_after_it_are_stored() {
    let (server, addr) = start(&["--max-line-bytes", "64"]);
    let mut s = graphite_tcp(addr);
    s.write_all(b"before 1 1\n").unwrap();
    s.write_all(&vec![b'x'; 1 << 20]).unwrap();
    s.write_all(b" 2 2\nafter 3 3\nafter 4 4\n").unwrap();
    let mut client = client(&server);
    wait_for_figure(&mut client, "graphite.points", 3);
    assert_eq!(figure(&mut client, "graphite.errors.line_too_long"), 1);
    assert_eq!(get(&server, "after"), "ok\nafter 3.0 3\nafter 4.0 4\n\n");
    assert_eq!(get(&server, "before"), "ok\nbefore 1.0 1\n\n");
    // Still open: more lines are stored.
    s.write_all(b"after 5 5\n").unwrap();
    wait_for_figure(&mut client, "graphite.points", 4);
}

#[test]
fn a_client_sending_garbage_forever_does_not_stall_a_course_client() {
    let (server, addr) = start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let garbage_sender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut s = graphite_tcp(addr);
            let garbage: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
            let mut sent = 0u64;
            while !stop.load(Ordering::SeqCst) {
                s.write_all(&garbage).expect("the server keeps reading garbage");
                sent += 1;
            }
            sent
        })
    };
    let mut client = client(&server);
    // The garbage is flowing before the course client starts.
    wait_until("garbage to be counted", || skipped_lines(&mut client) > 0);
    for i in 0..300 {
        client.put("course.k", i as f64, Some(i)).expect("put");
        assert_eq!(client.get("course.k").expect("get")["course.k"].len(), i as usize + 1);
    }
    stop.store(true, Ordering::SeqCst);
    let writes = garbage_sender.join().expect("garbage sender");
    assert!(writes > 0);
    assert_eq!(figure(&mut client, "graphite.points"), 0, "garbage is never a point");
    assert!(skipped_lines(&mut client) > 0);
}

#[test]
fn a_flood_of_datagrams_does_not_stall_a_course_client() {
    let (server, addr) = start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let datagram: String = (0..50).map(|i| format!("flood.k{i} {i} 1\n")).collect();
            // Bounded in count as well, should the client never finish.
            for sent in 0..2_000_000u64 {
                if stop.load(Ordering::Relaxed) {
                    return sent;
                }
                // A full receive buffer makes the kernel drop datagrams, not
                // fail the send; any other failure ends the flood.
                if socket.send_to(datagram.as_bytes(), addr).is_err() {
                    return sent;
                }
            }
            2_000_000
        })
    };
    let mut client = client(&server);
    wait_until("datagrams to arrive", || figure(&mut client, "graphite.datagrams") > 0);
    for i in 0..100 {
        client.put("course.k", i as f64, Some(i)).expect("put");
        assert_eq!(client.get("course.k").expect("get")["course.k"].len(), i as usize + 1);
    }
    stop.store(true, Ordering::Relaxed);
    assert!(flooder.join().expect("flooder") > 0);
    assert_eq!(get(&server, "flood.k7"), "ok\nflood.k7 7.0 1\n\n");
}

#[test]
fn the_connection_cap_counts_graphite_connections() {
    let (server, addr) = start(&["--max-connections", "3"]);
    let mut client = client(&server);
    let mut first = graphite_tcp(addr);
    let mut second = graphite_tcp(addr);
    first.write_all(b"cap.a 1 1\n").unwrap();
    second.write_all(b"cap.b 1 1\n").unwrap();
    // Three are open once a line from each graphite connection is stored.
    wait_for_figure(&mut client, "graphite.points", 2);
    // Over the cap: closed at once, with nothing sent.
    let mut third = graphite_tcp(addr);
    assert_eq!(third.read(&mut [0u8; 1]).expect("closed"), 0);
    assert_eq!(figure(&mut client, "connections.rejected"), 1);
    assert_eq!(figure(&mut client, "connections.current"), 3);
}

#[test]
fn a_silent_graphite_connection_is_closed_by_the_idle_timeout() {
    let (server, addr) = start(&["--idle-timeout", "0.2"]);
    let mut quiet = graphite_tcp(addr);
    quiet.write_all(b"idle.a 1 1\nidle.b 2").unwrap();
    assert_eq!(quiet.read(&mut [0u8; 1]).expect("closed"), 0);
    let mut client = client(&server);
    assert_eq!(figure(&mut client, "connections.idle_closed"), 1);
    assert_eq!(get(&server, "idle.a"), "ok\nidle.a 1.0 1\n\n");
    assert_eq!(get(&server, "idle.b"), "ok\n\n", "an unfinished line is not a point");
}

#[test]
fn points_sent_over_graphite_survive_a_kill_and_a_restart_with_fsync_always() {
    let dir = TempDir::new("graphite-durable");
    let args = [
        "--data-dir",
        dir.path(),
        "--fsync",
        "always",
        "--graphite-listen",
        "127.0.0.1:0",
    ];
    let server = TestServer::start(&args);
    let addr = graphite_addr(&server);
    let mut s = graphite_tcp(addr);
    let lines: String = (0..1000).map(|i| format!("dur.tcp {i} {i}\n")).collect();
    s.write_all(lines.as_bytes()).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.send_to(b"dur.udp;b=2;a=1 42 7", addr).expect("send");
    let mut client = client(&server);
    wait_for_figure(&mut client, "graphite.points", 1001);
    // A put's ok waits for the commit of its turn, which comes after the
    // turns that stored the points: once it is here, they are on disk.
    client.put("sync", 1.0, Some(1)).expect("put");
    let mut server = server;
    server.signal("KILL");
    server.wait_exit();
    drop(server);

    let restarted = TestServer::start(&args[..4]);
    let mut client = Client::new("127.0.0.1", restarted.addr.port(), Some(IO_TIMEOUT)).expect("connect");
    let got = client.get("dur.tcp").expect("get");
    let want: Vec<(i64, f64)> = (0..1000).map(|i| (i, i as f64)).collect();
    assert_eq!(got["dur.tcp"], want);
    assert_eq!(get(&restarted, "dur.udp;a=1;b=2"), "ok\ndur.udp;a=1;b=2 42.0 7\n\n");
}

#[test]
fn a_graceful_stop_keeps_what_was_read() {
    let dir = TempDir::new("graphite-stop");
    let args = ["--data-dir", dir.path(), "--graphite-listen", "127.0.0.1:0"];
    let server = TestServer::start(&args);
    let addr = graphite_addr(&server);
    let mut s = graphite_tcp(addr);
    s.write_all(b"stop.a 1 1\nstop.a 2 2\n").unwrap();
    let mut client = client(&server);
    wait_for_figure(&mut client, "graphite.points", 2);
    // The stop closes the graphite connection too, with nothing sent.
    let closer = std::thread::spawn(move || {
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("read to the close");
        rest
    });
    server.stop();
    assert_eq!(closer.join().expect("reader"), b"");
    let restarted = TestServer::start(&args[..2]);
    assert_eq!(get(&restarted, "stop.a"), "ok\nstop.a 1.0 1\nstop.a 2.0 2\n\n");
}

#[test]
fn the_worked_session_of_the_contract() {
    let (server, addr) = start(&[]);
    let mut s = graphite_tcp(addr);
    s.write_all(
        b"palm.cpu 23.7 1150864247\r\ncpu;host=a;dc=x\t1e3 1150864250.9\nbad line with four\npalm.cpu nan 1150864248\n",
    )
    .unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.send_to(b"palm.cpu 0.5 1150864248", addr).expect("send");
    let mut client = client(&server);
    wait_for_figure(&mut client, "graphite.points", 3);
    assert_eq!(
        get(&server, "palm.cpu"),
        "ok\npalm.cpu 23.7 1150864247\npalm.cpu 0.5 1150864248\n\n"
    );
    assert_eq!(
        get(&server, "cpu;dc=x;host=a"),
        "ok\ncpu;dc=x;host=a 1000.0 1150864250\n\n"
    );
    for (name, want) in [
        ("graphite.datagrams", 1),
        ("graphite.errors.wrong_field_count", 1),
        ("graphite.errors.non_finite_value", 1),
        ("requests.put", 0),
    ] {
        assert_eq!(figure(&mut client, name), want, "{name}");
    }
}

/// Runs metricsd with `args` until it exits; its exit code and stderr.
fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_metricsd"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn metricsd");
    common::exit_and_stderr(child)
}

#[test]
fn a_bad_graphite_address_or_a_port_taken_for_udp_is_refused() {
    for listen in ["2003", "127.0.0.1", ":2003", "127.0.0.1:99999"] {
        let (code, stderr) = run_to_exit(&["--in-memory", "--graphite-listen", listen]);
        assert_eq!(code, Some(2), "{listen}: {stderr}");
        assert_eq!(
            stderr,
            format!(
                "metricsd: --graphite-listen takes HOST:PORT such as 127.0.0.1:2003, not {listen:?} (see 'metricsd --help')\n"
            )
        );
    }
    // Another program holds the port for UDP: TCP alone is not enough.
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let listen = taken.local_addr().expect("address").to_string();
    let (code, stderr) = run_to_exit(&["--in-memory", "--listen", "127.0.0.1:0", "--graphite-listen", &listen]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!("metricsd: cannot listen for graphite on {listen}: Address already in use (os error 98)\n")
    );
}
