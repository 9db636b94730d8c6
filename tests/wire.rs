//! The protocol on the wire, byte for byte, against a real server process.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::Shutdown;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const EXAMPLE_PUTS: &[u8] =
    b"put palm.cpu 2.0 1150864247\nput palm.cpu 0.5 1150864248\nput eardrum.cpu 3.0 1150864250\n";

#[test]
fn assignment_example_byte_exact() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    assert_eq!(exchange(&mut s, EXAMPLE_PUTS, 3), OK.repeat(3));
    assert_eq!(
        exchange(&mut s, b"get palm.cpu\n", 1),
        "ok\npalm.cpu 2.0 1150864247\npalm.cpu 0.5 1150864248\n\n"
    );
    assert_eq!(
        exchange(&mut s, b"get *\n", 1),
        "ok\neardrum.cpu 3.0 1150864250\npalm.cpu 2.0 1150864247\npalm.cpu 0.5 1150864248\n\n"
    );
    assert_eq!(exchange(&mut s, b"get nothing.here\n", 1), OK);
    assert_eq!(exchange(&mut s, b"put palm.cpu abc 1\n", 1), ERR);
    // Another connection sees the same data: the store is the server's.
    let mut other = server.connect();
    assert_eq!(
        exchange(&mut other, b"get eardrum.cpu\n", 1),
        "ok\neardrum.cpu 3.0 1150864250\n\n"
    );
}

/// The `range` session of PROTOCOL.md section 3.8, byte for byte, and a
/// range answer sliced under a 64-byte output limit.
#[test]
fn range_example_byte_exact() {
    let server = TestServer::start(&["--max-pending-output", "64"]);
    let mut s = server.connect();
    let puts = b"put k 1 100\nput k 2 105\nput k 4 110\nput s -1 -7\n";
    assert_eq!(exchange(&mut s, puts, 4), OK.repeat(4));
    assert_eq!(
        exchange(&mut s, b"range k 100 105\n", 1),
        "ok\nk 1.0 100\nk 2.0 105\n\n"
    );
    assert_eq!(
        exchange(&mut s, b"range * -10 104\n", 1),
        "ok\nk 1.0 100\ns -1.0 -7\n\n"
    );
    assert_eq!(
        exchange(&mut s, b"range * -100 200 60 count\n", 1),
        "ok\nk 3.0 60\ns 1.0 -60\n\n"
    );
    assert_eq!(exchange(&mut s, b"range k 101 109 5 sum\n", 1), "ok\nk 2.0 105\n\n");
    assert_eq!(
        exchange(&mut s, b"range k 6 5\nrange k 0 9 0 max\nrange k 0 9 5 median\n", 3),
        ERR.repeat(3)
    );
    let many: Vec<u8> = (0..1000)
        .flat_map(|t| format!("put m {t} {t}\n").into_bytes())
        .collect();
    assert_eq!(exchange(&mut s, &many, 1000), OK.repeat(1000));
    let want: String = (200..800).map(|t| format!("m {t}.0 {t}\n")).collect();
    assert_eq!(exchange(&mut s, b"range m 200 799\n", 1), format!("ok\n{want}\n"));
    let buckets: String = (0..10).map(|b| format!("m {}.0 {}\n", b * 100 + 99, b * 100)).collect();
    assert_eq!(
        exchange(&mut s, b"range m 0 999 100 last\n", 1),
        format!("ok\n{buckets}\n")
    );
}

#[test]
fn last_write_wins_and_answers_are_sorted() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    let puts = b"put k 3 30\nput k 1 10\nput k 2 20\nput k 9 10\nput k -1 -5\nput a 1 1\n";
    assert_eq!(exchange(&mut s, puts, 6), OK.repeat(6));
    assert_eq!(
        exchange(&mut s, b"get k\n", 1),
        "ok\nk -1.0 -5\nk 9.0 10\nk 2.0 20\nk 3.0 30\n\n"
    );
    assert_eq!(
        exchange(&mut s, b"get *\n", 1),
        "ok\na 1.0 1\nk -1.0 -5\nk 9.0 10\nk 2.0 20\nk 3.0 30\n\n"
    );
}

#[test]
fn values_come_back_in_shortest_float_form() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    let cases = [
        ("23.7", "23.7"),
        ("-1", "-1.0"),
        ("4200000", "4200000.0"),
        ("1e-3", "0.001"),
        ("+0.5", "0.5"),
        ("1e-7", "1e-7"),
        ("1e300", "1e300"),
        ("0.30000000000000004", "0.30000000000000004"),
        ("-0", "-0.0"),
        ("1E2", "100.0"),
    ];
    for (i, (sent, _)) in cases.iter().enumerate() {
        assert_eq!(exchange(&mut s, format!("put v {sent} {i}\n").as_bytes(), 1), OK);
    }
    let mut want = String::from("ok\n");
    for (i, (_, shown)) in cases.iter().enumerate() {
        want.push_str(&format!("v {shown} {i}\n"));
    }
    want.push('\n');
    assert_eq!(exchange(&mut s, b"get v\n", 1), want);
    let extremes = format!("put t 1 {}\nput t 2 {}\nget t\n", i64::MIN, i64::MAX);
    assert_eq!(
        exchange(&mut s, extremes.as_bytes(), 3),
        format!("{OK}{OK}ok\nt 1.0 {}\nt 2.0 {}\n\n", i64::MIN, i64::MAX)
    );
}

#[test]
fn every_invalid_form_gets_one_error_and_the_connection_goes_on() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    assert_eq!(exchange(&mut s, b"put k 1.5 1\n", 1), OK);
    let invalid: &[&[u8]] = &[
        b"PUT k 1 2",
        b"Get k",
        b"put, k 1 2",
        b"GET *",
        b"get",
        b"get a b",
        b"put a 1",
        b"put a 1 2 3",
        b"put",
        b"put k 1 ",
        // `delete` takes one key, and not the wildcard.
        b"delete *",
        b"delete",
        b"delete k k",
        b"DELETE k",
        b"put palm.cpu abc 1",
        b"put k nan 1",
        b"put k inf 1",
        b"put k -inf 1",
        b"put k 1e999 1",
        b"put k 0,5 1",
        b"put k 1 1.0",
        b"put k 1 1e9",
        b"put k 1 x",
        b"put k 1 99999999999999999999",
        b"put * 1 2",
        b"put k\x00 1 2",
        b"get k\x01",
        b"put k\x7f 1 2",
        b"get a\rb",
        b"get \xff\xfe",
        b"put \xc3\x28 1 2",
        b"get wrong command test",
        // Unicode whitespace and C1 controls in keys: the assignment's Python
        // clients split answer lines on them, so they are refused.
        "put a\u{a0}b 1 2".as_bytes(),
        "get a\u{2028}b".as_bytes(),
        "put \u{3000} 1 2".as_bytes(),
        "put a\u{85} 1 2".as_bytes(),
    ];
    for line in invalid {
        let mut request = line.to_vec();
        request.extend_from_slice(b"\nget k\n");
        assert_eq!(
            exchange(&mut s, &request, 2),
            format!("{ERR}ok\nk 1.5 1\n\n"),
            "line {:?}",
            String::from_utf8_lossy(line)
        );
    }
    // Nothing invalid was stored.
    assert_eq!(exchange(&mut s, b"get *\n", 1), "ok\nk 1.5 1\n\n");
}

#[test]
fn blank_lines_get_no_answer() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    s.write_all(b"\n\r\n \t \r\n\t\n").unwrap();
    assert_silent(&mut s);
    // The course's checker: exactly one answer, an error, and nothing after.
    assert_eq!(exchange(&mut s, b"get wrong command test\n\n", 1), ERR);
    assert_silent(&mut s);
    assert_eq!(exchange(&mut s, b"\n\nget x\n\n\n", 1), OK);
    assert_silent(&mut s);
}

#[test]
fn crlf_tabs_and_runs_of_blanks() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    assert_eq!(
        exchange(
            &mut s,
            b"put palm.cpu 2.0 1150864247\r\n\tput \t palm.cpu   0.5\t1150864248  \r\n",
            2
        ),
        OK.repeat(2)
    );
    assert_eq!(
        exchange(&mut s, b"  get\tpalm.cpu \r\n", 1),
        "ok\npalm.cpu 2.0 1150864247\npalm.cpu 0.5 1150864248\n\n"
    );
    // Only one \r before the \n is a line ending; a second is a control byte.
    assert_eq!(exchange(&mut s, b"get palm.cpu\r\r\n", 1), ERR);
}

#[test]
fn pipeline_of_ten_thousand_requests_in_one_write() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    let mut request = Vec::new();
    let mut want = String::new();
    for i in 0..10_000 {
        match i % 4 {
            0 | 1 => {
                request.extend_from_slice(format!("put p{} {i}.5 {i}\n", i % 7).as_bytes());
                want.push_str(OK);
            }
            2 => {
                // The series as it stands after the puts before this get.
                request.extend_from_slice(b"get p0\n");
                let points: String = (0..i)
                    .filter(|j| j % 4 < 2 && j % 7 == 0)
                    .map(|j| format!("p0 {j}.5 {j}\n"))
                    .collect();
                want.push_str(&format!("ok\n{points}\n"));
            }
            _ => {
                request.extend_from_slice(b"bad\n");
                want.push_str(ERR);
            }
        }
    }
    assert_eq!(exchange(&mut s, &request, 10_000), want);
}

/// Requests of every kind, with keys under `prefix` (fixed width, so every
/// prefix gives a buffer of the same length), and their answers.
fn mixed(prefix: &str) -> (Vec<u8>, String) {
    let p = prefix;
    let requests = format!(
        "put {p}a 1 1\r\nget {p}a\n\nPUT x\nput {p}b 2.5 -3\n\tget  {p}b  \nput {p}a 7 1\nget {p}a\nget {p}zz\n"
    );
    let answers = [
        OK.to_owned(),
        format!("ok\n{p}a 1.0 1\n\n"),
        ERR.to_owned(),
        OK.to_owned(),
        format!("ok\n{p}b 2.5 -3\n\n"),
        OK.to_owned(),
        format!("ok\n{p}a 7.0 1\n\n"),
        OK.to_owned(),
    ];
    (requests.into_bytes(), answers.concat())
}

#[test]
fn split_at_every_byte_boundary_with_pauses() {
    let server = TestServer::start(&[]);
    let len = mixed("c000.").0.len();
    for cut in 1..len {
        let (requests, answers) = mixed(&format!("c{cut:03}."));
        assert_eq!(requests.len(), len);
        let mut s = server.connect();
        s.set_nodelay(true).unwrap();
        s.write_all(&requests[..cut]).unwrap();
        std::thread::sleep(Duration::from_millis(3));
        s.write_all(&requests[cut..]).unwrap();
        assert_eq!(read_answers(&mut s, 8), answers, "cut at {cut}");
    }
}

#[test]
fn one_byte_at_a_time() {
    let server = TestServer::start(&[]);
    let (requests, answers) = mixed("k.");
    let mut s = server.connect();
    s.set_nodelay(true).unwrap();
    for b in &requests {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
    assert_eq!(read_answers(&mut s, 8), answers);
}

#[test]
fn many_concurrent_clients_lose_nothing() {
    const CLIENTS: usize = 256;
    const PUTS: usize = 50;
    let server = TestServer::start(&[]);
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let mut s = server.connect();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                // Half pipeline everything at once, half go one by one.
                if c % 2 == 0 {
                    let batch: String = (0..PUTS)
                        .map(|i| format!("put c{c} {i} {i}\nput shared {c} {c}\n"))
                        .collect();
                    assert_eq!(exchange(&mut s, batch.as_bytes(), 2 * PUTS), OK.repeat(2 * PUTS));
                } else {
                    for i in 0..PUTS {
                        let put = format!("put c{c} {i} {i}\nput shared {c} {c}\n");
                        assert_eq!(exchange(&mut s, put.as_bytes(), 2), OK.repeat(2));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut s = server.connect();
    let all = exchange(&mut s, b"get *\n", 1);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for line in all.lines().skip(1).filter(|l| !l.is_empty()) {
        *counts.entry(line.split(' ').next().unwrap()).or_default() += 1;
    }
    assert_eq!(counts.len(), CLIENTS + 1);
    assert_eq!(counts["shared"], CLIENTS, "one point per client timestamp");
    for c in 0..CLIENTS {
        assert_eq!(counts[format!("c{c}").as_str()], PUTS);
    }
}

#[test]
fn half_close_gets_every_answer_then_the_close() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    s.write_all(EXAMPLE_PUTS).unwrap();
    s.write_all(b"get palm.cpu\nget *\nput unterminated 1").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let got = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert_eq!(
        got,
        format!(
            "{}ok\npalm.cpu 2.0 1150864247\npalm.cpu 0.5 1150864248\n\n\
             ok\neardrum.cpu 3.0 1150864250\npalm.cpu 2.0 1150864247\npalm.cpu 0.5 1150864248\n\n",
            OK.repeat(3)
        )
    );
    // The line without its `\n` was not a request.
    let mut s = server.connect();
    assert_eq!(exchange(&mut s, b"get unterminated\n", 1), OK);
}

#[test]
fn large_answers_arrive_whole_and_in_order() {
    let server = TestServer::start(&[]);
    let mut s = server.connect();
    let points = 200_000;
    let puts: String = (0..points).map(|i| format!("put big.series {i}.25 {i}\n")).collect();
    assert_eq!(exchange(&mut s, puts.as_bytes(), points), OK.repeat(points));
    let mut want = String::from("ok\n");
    for i in 0..points {
        want.push_str(&format!("big.series {i}.25 {i}\n"));
    }
    want.push('\n');
    // Several big answers pipelined, with a small one between them.
    let got = exchange(&mut s, b"get big.series\nget none\nget *\n", 3);
    assert_eq!(got, format!("{want}{OK}{want}"));
}
