//! metricsd-bench against a real server (in-process, one per test) and
//! against fake servers that answer wrong. Counts only, never timings.

use metricsd::server::spawn_local;
use metricsd::Client;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

/// Runs metricsd-bench against `addr` with `args` (split at whitespace).
/// Its --timeout bounds any wait for a server, so a broken server fails
/// the test instead of hanging it.
fn bench(addr: SocketAddr, args: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metricsd-bench"))
        .args(["--addr", &addr.to_string(), "--timeout", "20"])
        .args(args.split_whitespace())
        .output()
        .expect("run metricsd-bench")
}

/// The JSON report of a run that must have succeeded.
fn report(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "stderr is for a terminal only: {stderr}");
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// The one-line message of a run that must have failed with `code`.
fn failure(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

/// Asserts a report's answer and error counts.
fn assert_counts(json: &Value, requests: u64, errors: u64) {
    assert_eq!(
        (json["requests"].as_u64(), json["errors"].as_u64()),
        (Some(requests), Some(errors)),
        "{json}"
    );
}

/// Runs `args` with --json against a fresh in-process server; returns the
/// report and the server's address.
fn run_fresh(args: &str) -> (Value, SocketAddr) {
    let (addr, server) = spawn_local().expect("start server");
    let json = report(&bench(addr, &format!("--json {args}")));
    server.shutdown();
    (json, addr)
}

#[test]
fn put_run_counts_every_request() {
    let (json, addr) = run_fresh("--requests 500 --connections 4 --pipeline 3");
    assert_counts(&json, 500, 0);
    assert_eq!(json["workload"], "put");
    assert_eq!(json["points"], 0);
    assert_eq!(json["addr"], addr.to_string());
    assert_eq!(json["requests_limit"], 500);
    let latency = &json["latency_us"];
    for key in ["p50", "p90", "p99", "p99_9", "max", "mean"] {
        assert!(latency[key].as_f64().is_some_and(|v| v >= 0.0), "{key}: {json}");
    }
    assert!(latency["p50"].as_f64() <= latency["max"].as_f64());
}

#[test]
fn get_run_checks_the_preloaded_points() {
    let (addr, server) = spawn_local().unwrap();
    let get = "--json --workload get --keys 20 --points 5 --requests 300";
    let json = report(&bench(addr, &format!("{get} --pipeline 4 --connections 3")));
    assert_counts(&json, 300, 0);
    assert_eq!(json["points"], 5);
    // What the tool stored is what its checks expect.
    let mut client = Client::new("127.0.0.1", addr.port(), Some(Duration::from_secs(20))).unwrap();
    let all = client.get("*").unwrap();
    assert_eq!(all.len(), 20);
    assert_eq!(all["bench.k7"], [(1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0), (5, 1.25)]);
    // The same run again stores the same points: it still passes.
    assert_counts(&report(&bench(addr, get)), 300, 0);
    // After puts to the same keys the answers no longer match: a clear stop.
    assert_counts(&report(&bench(addr, "--json --keys 20 --requests 100")), 100, 0);
    let stale = failure(&bench(addr, get), 1);
    assert!(
        stale.contains("where 5 were stored") && stale.contains("start it afresh"),
        "{stale}"
    );
    server.shutdown();
}

#[test]
fn mixed_run_over_two_threads() {
    let (json, _) = run_fresh("--workload mixed:30 --keys 10 --points 2 --requests 400 --threads 2 --connections 5");
    assert_counts(&json, 400, 0);
    assert_eq!(json["workload"], "mixed:30");
    assert_eq!(json["threads"], 2);
}

#[test]
fn open_loop_run_sends_exactly_the_requests_asked() {
    // 200 requests at 4,000 a second: about 50 ms.
    for threads in ["1", "2"] {
        let (json, _) = run_fresh(&format!(
            "--rate 4000 --requests 200 --connections 3 --pipeline 2 --threads {threads}"
        ));
        assert_counts(&json, 200, 0);
        assert_eq!(json["rate"], 4000.0);
    }
}

#[test]
fn runs_bounded_by_duration() {
    for extra in ["", "--rate 2000"] {
        let (json, _) = run_fresh(&format!("--duration 0.2 --connections 2 {extra}"));
        assert!(json["requests"].as_u64().is_some_and(|n| n > 0), "{json}");
        assert_eq!(json["errors"], 0);
        assert_eq!(json["duration_limit_s"], 0.2);
        assert!(json["requests_limit"].is_null());
    }
}

/// A server that answers each request line with `answer(line)`, or closes
/// the connection when it gives None. Serves `connections` connections,
/// each in a thread that ends when its peer closes.
fn fake_server(connections: usize, answer: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            let answer = Arc::clone(&answer);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    match answer(line.trim_end()) {
                        Some(bytes) if stream.write_all(&bytes).is_ok() => line.clear(),
                        _ => return,
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn malformed_answers_stop_the_run() {
    // A complete answer with an unknown status line.
    let addr = fake_server(2, |_| Some(b"garbage\n\n".to_vec()));
    let msg = failure(&bench(addr, "--requests 10 --connections 2"), 1);
    assert!(
        msg.contains("wrong answer to \"put bench.k") && msg.contains("unknown status line"),
        "{msg}"
    );
    // A start that no answer has, without an end: stopped at once, not after --timeout.
    let addr = fake_server(1, |_| Some(b"HTTP/1.1 400 Bad Request\r\n".to_vec()));
    let msg = failure(&bench(addr, "--requests 10 --connections 1"), 1);
    assert!(msg.contains("unknown status line") && msg.contains("HTTP/1.1"), "{msg}");
    // Data lines in the answer to a put.
    let addr = fake_server(1, |_| Some(b"ok\nbench.k0 1.0 1\n\n".to_vec()));
    let msg = failure(&bench(addr, "--requests 10 --connections 1"), 1);
    assert!(msg.contains("data lines where none belong"), "{msg}");
    // Two answers to one request.
    let addr = fake_server(1, |_| Some(b"ok\n\nok\n\n".to_vec()));
    let msg = failure(&bench(addr, "--requests 10 --connections 1"), 1);
    assert!(msg.contains("no request was waiting"), "{msg}");
}

#[test]
fn wrong_points_stop_a_get_run() {
    // Puts (the preload) are stored; every get returns one point of two.
    let addr = fake_server(2, |line| {
        Some(match line.strip_prefix("get ") {
            Some(key) => format!("ok\n{key} 0.25 1\n\n").into_bytes(),
            None => b"ok\n\n".to_vec(),
        })
    });
    let msg = failure(
        &bench(addr, "--workload get --points 2 --requests 10 --connections 1"),
        1,
    );
    assert!(msg.contains("1 points where 2 were stored"), "{msg}");
}

#[test]
fn error_answers_are_counted_not_fatal() {
    let addr = fake_server(2, |_| Some(b"error\nwrong command\n\n".to_vec()));
    assert_counts(&report(&bench(addr, "--json --requests 50 --connections 2")), 50, 50);
}

#[test]
fn a_server_that_closes_or_stalls_fails_the_run() {
    let addr = fake_server(1, |_| None);
    let msg = failure(&bench(addr, "--requests 10 --connections 1"), 1);
    assert!(msg.contains("closed connection 0 with 1 requests unanswered"), "{msg}");
    let addr = fake_server(1, |_| Some(Vec::new()));
    // The later --timeout wins over the one bench() gives.
    let msg = failure(&bench(addr, "--timeout 0.3 --requests 5 --connections 1"), 1);
    assert!(
        msg.contains("no answer from the server for 300ms with 1 requests unanswered"),
        "{msg}"
    );
}

#[test]
fn unreachable_server_and_bad_flags() {
    // A port that was just free: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let msg = failure(&bench(addr, "--requests 1"), 1);
    assert!(
        msg.starts_with(&format!("metricsd-bench: cannot connect to {addr}: ")),
        "{msg}"
    );
    let msg = failure(&bench(addr, "--workload delete"), 2);
    assert!(msg.contains("--workload must be put, get or mixed"), "{msg}");
    let help = bench(addr, "--help");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--connections N"));
}
