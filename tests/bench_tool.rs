//! metricsd-bench against a real server (in-process, one per test), against
//! redis-server when it is installed (`--server redis`; skipped with a
//! notice when not), and against fake servers of both protocols that
//! answer wrong. Counts only, never timings.

mod common;

use common::TempDir;
use metricsd::server::{spawn_local, Config, Server};
use metricsd::Client;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a test waits for redis-server to start or answer: generous for
/// a loaded machine, short enough to notice a hang.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

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
fn a_realistic_mix_stores_every_put_in_its_series_and_range_runs_check_windows() {
    let (addr, server) = spawn_local().unwrap();
    let mix = "--json --workload mix --key-prefix mix. --keys 40 --connections 4 --pipeline 8 --requests 4000";
    let json = report(&bench(addr, mix));
    assert_counts(&json, 4000, 0);
    assert_eq!(json["workload"], "mix");
    let mut client = Client::new("127.0.0.1", addr.port(), Some(Duration::from_secs(20))).unwrap();
    let all = client.get("*").unwrap();
    // 100 points in each of 40 series: every put a new point, in order.
    assert_eq!(all.len(), 40);
    assert!(all.values().all(|points| points.len() == 100), "{:?}", all.keys());
    assert!(all.contains_key("mix.host0.counter0") && all.contains_key("mix.host1.float19"));
    let counter = &all["mix.host0.counter0"];
    assert!(counter.windows(2).all(|w| w[0].0 < w[1].0));
    // A counter: it grows, or resets to near zero.
    assert!(counter.windows(2).all(|w| w[0].1 <= w[1].1 || w[1].1 < w[0].1 / 2.0));
    server.shutdown();

    let (json, _) = run_fresh("--workload range:7 --keys 3 --points 30 --requests 300 --pipeline 4");
    assert_counts(&json, 300, 0);
    assert_eq!(json["workload"], "range:7");
}

#[test]
fn no_preload_checks_points_stored_earlier() {
    let (addr, server) = spawn_local().unwrap();
    let get = "--workload get --keys 4 --points 3 --requests 20 --connections 2";
    // Nothing stored yet: the answers are empty, and wrong.
    let msg = failure(&bench(addr, &format!("{get} --no-preload")), 1);
    assert!(msg.contains("0 points where 3 were stored"), "{msg}");
    assert_counts(&report(&bench(addr, &format!("--json {get}"))), 20, 0);
    assert_counts(&report(&bench(addr, &format!("--json {get} --no-preload"))), 20, 0);
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

/// Listens on a free loopback port and serves `connections` connections,
/// each in a thread of its own that runs `serve` with a reader and a
/// writer of it.
fn listen(connections: usize, serve: impl Fn(BufReader<TcpStream>, TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let stream = stream.unwrap();
            let serve = Arc::clone(&serve);
            std::thread::spawn(move || serve(BufReader::new(stream.try_clone().unwrap()), stream));
        }
    });
    addr
}

/// A server that answers each request line with `answer(line)`, or closes
/// the connection when it gives None; `stats` (which the tool asks on a
/// connection of its own before the run) it answers as an in-memory
/// metricsd. Each connection's thread ends when its peer closes.
fn fake_server(connections: usize, answer: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static) -> SocketAddr {
    fake_server_with_stats(connections, b"ok\nstore.durable 0\n\n", answer)
}

/// [`fake_server`] answering `stats` with `stats`.
fn fake_server_with_stats(
    connections: usize,
    stats: &'static [u8],
    answer: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> SocketAddr {
    listen(connections + 1, move |mut reader, mut stream| {
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            let reply = match line.trim_end() {
                "stats" => Some(stats.to_vec()),
                line => answer(line),
            };
            match reply {
                Some(bytes) if stream.write_all(&bytes).is_ok() => line.clear(),
                _ => return,
            }
        }
    })
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
        msg.starts_with(&format!("metricsd-bench: cannot ask {addr} for its stats: ")),
        "{msg}"
    );
    let msg = failure(&bench(addr, "--workload delete"), 2);
    assert!(msg.contains("--workload must be put, get, mixed"), "{msg}");
    let help = bench(addr, "--help");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--connections N"));
}

// ---- what the server keeps ----

/// An in-process durable server (`--fsync never`) over `dir`.
fn spawn_durable(dir: &TempDir) -> (SocketAddr, metricsd::server::Handle) {
    let storage = metricsd::journal::Options {
        fsync: metricsd::journal::Fsync::Never,
        ..metricsd::journal::Options::new(&dir.0)
    };
    let server = Server::bind(Config {
        listen: "127.0.0.1:0".into(),
        storage: Some(storage),
        ..Config::default()
    })
    .expect("start a durable server");
    let (addr, handle) = (server.local_addr(), server.handle());
    std::thread::spawn(move || server.run().expect("the server runs"));
    (addr, handle)
}

fn stat(addr: SocketAddr, name: &str) -> String {
    let mut client = Client::new("127.0.0.1", addr.port(), Some(IO_TIMEOUT)).unwrap();
    let figures = client.stats().unwrap();
    let (_, value) = figures.into_iter().find(|(n, _)| n == name).expect(name);
    value
}

#[test]
fn a_durable_server_is_refused_unless_allowed_and_cleanup_deletes_what_was_written() {
    let dir = TempDir::new("bench-durable");
    let (addr, server) = spawn_durable(&dir);
    let mut client = Client::new("127.0.0.1", addr.port(), Some(IO_TIMEOUT)).unwrap();
    client.put("user.series", 1.0, Some(1)).unwrap();
    let msg = failure(&bench(addr, "--requests 100 --connections 2"), 1);
    assert_eq!(
        msg,
        format!(
            "metricsd-bench: the metricsd at {addr} is durable (stats: store.durable 1): the points of this run \
             would stay in its data; run against a server started with --in-memory, or give --allow-durable \
             (with --cleanup to delete the keys written at the end)\n"
        )
    );
    assert_eq!(stat(addr, "points"), "1", "nothing was written");
    // Allowed: it runs, says so, and deletes every key it wrote.
    let json = report(&bench(
        addr,
        "--json --allow-durable --cleanup --workload mixed:50 --keys 20 --points 3 --requests 200 --connections 2",
    ));
    assert_counts(&json, 200, 0);
    assert_eq!(json["server_mode"], "durable");
    assert_eq!(json["cleaned_up_keys"], 20);
    assert_eq!(stat(addr, "series"), "1");
    let all = client.get("*").unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["user.series"]);
    // Without --cleanup the points stay.
    let table = bench(addr, "--allow-durable --keys 1 --requests 10 --connections 1");
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.starts_with(&format!("put on metricsd (durable) at {addr}, 1 keys")),
        "{table}"
    );
    assert!(!table.contains("cleanup"), "{table}");
    assert_eq!(stat(addr, "series"), "2");
    server.shutdown();
}

#[test]
fn the_mode_is_in_the_header_and_a_server_that_does_not_say_is_refused() {
    let (json, _) = run_fresh("--requests 10 --connections 1 --cleanup");
    assert_eq!(json["server_mode"], "in-memory");
    assert_eq!(json["cleaned_up_keys"], 1000);
    let (addr, server) = spawn_local().expect("start server");
    let out = bench(addr, "--requests 10 --connections 1");
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.starts_with(&format!("put on metricsd (in-memory) at {addr}")),
        "{table}"
    );
    server.shutdown();
    // Stats without store.durable: an older metricsd, or something else.
    let older = || fake_server_with_stats(1, b"ok\npoints 0\n\n", |_| Some(b"ok\n\n".to_vec()));
    let addr = older();
    let msg = failure(&bench(addr, "--requests 10 --connections 1"), 1);
    assert!(msg.contains("do not say whether it keeps its data"), "{msg}");
    let json = report(&bench(older(), "--json --allow-durable --requests 10 --connections 1"));
    assert_counts(&json, 10, 0);
    assert_eq!(json["server_mode"], serde_json::Value::Null);
}

// ---- --server redis ----

/// A redis-server child on a free loopback port, without persistence,
/// killed when dropped.
struct Redis {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    /// Starts redis-server, or says why the test is skipped and gives
    /// None when it is not installed (CI does not install it).
    fn start() -> Option<Redis> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            eprintln!("skipped: redis-server is not installed (apt-get install redis-server runs this test)");
            return None;
        }
        // A port just found free may be taken before Redis binds it: then
        // Redis exits, and another port is tried.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut redis = Redis {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            if redis.wait_ready() {
                return Some(redis);
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Waits until PING is answered (true) or the server has exited.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + IO_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait().expect("poll redis-server").is_some() {
                return false;
            }
            if let Ok(reply) = self.try_command(&["PING"]) {
                assert_eq!(reply, b"+PONG\r\n");
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not answer PING within {IO_TIMEOUT:?}");
    }

    /// Sends one command and returns its reply, which must be one line
    /// (the commands here answer a status, an integer or a short array
    /// read whole by `lrange`).
    fn try_command(&self, args: &[&str]) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.write_all(&command(args))?;
        let mut line = Vec::new();
        BufReader::new(stream).read_until(b'\n', &mut line)?;
        Ok(line)
    }

    fn command(&self, args: &[&str]) -> String {
        String::from_utf8(self.try_command(args).expect("talk to redis-server")).unwrap()
    }

    /// The elements of list `key`.
    fn lrange(&self, key: &str) -> Vec<String> {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.write_all(&command(&["LRANGE", key, "0", "-1"])).unwrap();
        let mut reader = BufReader::new(stream);
        let count: usize = read_line(&mut reader).strip_prefix('*').unwrap().parse().unwrap();
        (0..count)
            .map(|_| {
                let len: usize = read_line(&mut reader).strip_prefix('$').unwrap().parse().unwrap();
                let element = read_line(&mut reader);
                assert_eq!(element.len(), len);
                element
            })
            .collect()
    }
}

/// `args` as a RESP command.
fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len());
    for arg in args {
        out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    out.into_bytes()
}

/// One `\r\n`-ended line, without its end.
fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.strip_suffix("\r\n").expect("a RESP line").to_owned()
}

#[test]
fn redis_puts_append_to_lists() {
    let Some(redis) = Redis::start() else { return };
    let json = report(&bench(
        redis.addr,
        "--server redis --json --requests 300 --keys 1 --connections 3 --pipeline 4",
    ));
    assert_counts(&json, 300, 0);
    assert_eq!(json["server"], "redis");
    assert_eq!(redis.command(&["LLEN", "bench.k0"]), ":300\r\n");
    // One connection, another prefix and base: another list, in request
    // order. Values cycle from 0.0 by halves; timestamps are the base plus
    // the request number.
    let json = report(&bench(
        redis.addr,
        "--server redis --json --requests 10 --keys 1 --connections 1 --key-prefix other. --timestamp-base 7",
    ));
    assert_counts(&json, 10, 0);
    let points = redis.lrange("other.0");
    assert_eq!(points.len(), 10);
    assert_eq!(points[..3], ["0.0 7", "0.5 8", "1.0 9"]);
}

#[test]
fn redis_get_runs_check_the_preloaded_lists() {
    let Some(redis) = Redis::start() else { return };
    let get = "--server redis --json --workload get --keys 20 --points 5 --requests 300";
    let json = report(&bench(redis.addr, &format!("{get} --pipeline 4 --connections 3")));
    assert_counts(&json, 300, 0);
    assert_eq!(json["points"], 5);
    assert_eq!(
        redis.lrange("bench.k7"),
        ["0.25 1", "0.5 2", "0.75 3", "1.0 4", "1.25 5"]
    );
    // The preload replaces what puts added: the same run passes again.
    assert_counts(
        &report(&bench(redis.addr, "--server redis --json --keys 20 --requests 100")),
        100,
        0,
    );
    assert_counts(&report(&bench(redis.addr, get)), 300, 0);
    // Gets among puts, on two threads, open loop.
    let mixed = "--server redis --json --workload mixed:50 --keys 10 --points 3 --requests 400 --threads 2 \
                 --connections 4 --rate 4000";
    assert_counts(&report(&bench(redis.addr, mixed)), 400, 0);
    // Redis's error replies (here WRONGTYPE: a key that is not a list)
    // are counted, and the run goes on.
    assert_eq!(redis.command(&["SET", "wrong.0", "x"]), "+OK\r\n");
    let json = report(&bench(
        redis.addr,
        "--server redis --json --requests 5 --keys 1 --connections 1 --key-prefix wrong.",
    ));
    assert_counts(&json, 5, 5);
}

/// A fake Redis: answers each command (its arguments) with `answer(args)`.
fn fake_redis(connections: usize, answer: impl Fn(&[String]) -> Vec<u8> + Send + Sync + 'static) -> SocketAddr {
    listen(connections, move |mut reader, mut stream| {
        let mut header = String::new();
        while reader.read_line(&mut header).is_ok_and(|n| n > 0) {
            let count: usize = header.trim_end().strip_prefix('*').unwrap().parse().unwrap();
            // Each argument is a `$len` line, then the argument's line.
            let args: Vec<String> = (0..count)
                .map(|_| {
                    read_line(&mut reader);
                    read_line(&mut reader)
                })
                .collect();
            if stream.write_all(&answer(&args)).is_err() {
                return;
            }
            header.clear();
        }
    })
}

#[test]
fn redis_replies_are_checked_without_a_redis() {
    // Error replies are counted, not fatal.
    let addr = fake_redis(2, |_| b"-ERR out of memory\r\n".to_vec());
    assert_counts(
        &report(&bench(addr, "--server redis --json --requests 20 --connections 2")),
        20,
        20,
    );
    // A reply of the wrong type, and bytes no reply begins with.
    let addr = fake_redis(1, |_| b"+OK\r\n".to_vec());
    let msg = failure(&bench(addr, "--server redis --requests 5 --connections 1"), 1);
    assert!(
        msg.contains("wrong answer to \"RPUSH bench.k")
            && msg.contains("a simple string where an integer was expected"),
        "{msg}"
    );
    let addr = fake_redis(1, |_| b"ok\n\n".to_vec());
    let msg = failure(&bench(addr, "--server redis --requests 5 --connections 1"), 1);
    assert!(msg.contains("unknown RESP type byte 'o'"), "{msg}");
    // A get answered one point short of the preload.
    let addr = fake_redis(2, |args| match args[0].as_str() {
        "DEL" => b":0\r\n".to_vec(),
        "RPUSH" => format!(":{}\r\n", args.len() - 2).into_bytes(),
        _ => b"*1\r\n$6\r\n0.25 1\r\n".to_vec(),
    });
    let msg = failure(
        &bench(
            addr,
            "--server redis --workload get --points 2 --requests 10 --connections 1",
        ),
        1,
    );
    assert!(
        msg.contains("LRANGE bench.k") && msg.contains("1 points where 2 were stored"),
        "{msg}"
    );
    // A preload the server does not store.
    let addr = fake_redis(2, |_| b":0\r\n".to_vec());
    let msg = failure(
        &bench(
            addr,
            "--server redis --workload get --points 2 --requests 10 --connections 1",
        ),
        1,
    );
    assert!(
        msg.contains("cannot store the points the run reads: wrong answer: RPUSH of 2 points answered 0"),
        "{msg}"
    );
}

/// A stand-in for a Graphite port in front of the metricsd at `server`:
/// each of `connections` connections' plaintext lines `key value ts` is
/// stored there with a put, after `alter` (which may change or drop it),
/// as a relay such as carbon-c-relay would.
fn graphite_relay(
    connections: usize,
    server: SocketAddr,
    alter: impl Fn(&str, f64, i64) -> Option<f64> + Send + Sync + 'static,
) -> SocketAddr {
    listen(connections, move |mut reader, _| {
        let mut client = Client::new("127.0.0.1", server.port(), Some(IO_TIMEOUT)).unwrap();
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [key, value, ts] = fields[..] else {
                panic!("not a plaintext line: {line:?}")
            };
            let (value, ts) = (value.parse().unwrap(), ts.parse().unwrap());
            if let Some(value) = alter(key, value, ts) {
                client.put(key, value, Some(ts)).unwrap();
            }
            line.clear();
        }
    })
}

/// A Graphite run through `graphite_relay` to a fresh in-process
/// metricsd: its result, and the points the server holds.
fn graphite_run(
    args: &str,
    connections: usize,
    alter: impl Fn(&str, f64, i64) -> Option<f64> + Send + Sync + 'static,
) -> (Output, usize) {
    let (addr, server) = spawn_local().expect("start server");
    let port = graphite_relay(connections, addr, alter);
    let out = bench(
        port,
        &format!("--server graphite --confirm metricsd:{addr} --connections {connections} {args}"),
    );
    let mut client = Client::new("127.0.0.1", addr.port(), Some(IO_TIMEOUT)).unwrap();
    let stored = client.get("*").unwrap().values().map(Vec::len).sum();
    server.shutdown();
    (out, stored)
}

#[test]
fn graphite_stream_is_confirmed_and_read_back_point_by_point() {
    for extra in ["--pipeline 7", "--rate 3000"] {
        let (out, stored) = graphite_run(&format!("--json --requests 300 --keys 10 {extra}"), 3, |_, v, _| {
            Some(v)
        });
        let json = report(&out);
        assert_eq!(stored, 300);
        assert_eq!(
            (json["server"].as_str(), json["confirm"].as_str()),
            (Some("graphite"), Some("metricsd"))
        );
        assert_eq!(json["server_mode"], "in-memory");
        assert_eq!(json["points"], 300);
        // Keys 0, 5 and 9, put by connections 0, 2 and 0: 100 lines each
        // from a connection owning 4 or 3 keys.
        assert_eq!(json["checked_series"], 3);
        assert!(
            json["checked_points"].as_u64().is_some_and(|n| n > 0 && n < 300),
            "{json}"
        );
        let (sent, stored_s, confirmed) = (&json["sent_s"], &json["stored_s"], &json["confirmed_s"]);
        assert!(sent.as_f64() <= stored_s.as_f64() && stored_s == confirmed, "{json}");
    }
    let (out, _) = graphite_run("--requests 40 --keys 4 --pipeline 3", 2, |_, v, _| Some(v));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("graphite plaintext to 127.0.0.1:"), "{table}");
    assert!(
        table.contains("\npoints        40\n") && table.contains("checked       3 series"),
        "{table}"
    );
}

#[test]
fn graphite_points_lost_or_changed_fail_the_run() {
    // One line dropped: the count stops one short.
    let (out, stored) = graphite_run("--requests 50 --keys 5 --timeout 1", 2, |_, v, t| {
        (t != 1_600_000_007).then_some(v)
    });
    let msg = failure(&out, 1);
    assert_eq!(stored, 49);
    assert!(msg.contains("49 of the 50 points sent are stored"), "{msg}");
    // One value changed: the count is right, the read-back is not.
    let (out, _) = graphite_run("--requests 50 --keys 5", 2, |key, v, _| {
        Some(if key == "bench.k0" { v + 1.0 } else { v })
    });
    let msg = failure(&out, 1);
    // Its first point (a timestamp chosen at random) is one more than sent.
    let (_, point) = msg
        .split_once("series bench.k0: point 1 is (")
        .expect("the first point named");
    let (got, sent) = point.trim_end().split_once(") where (").expect("both given");
    let numbers = |text: &str| -> (i64, f64) {
        let (t, v) = text.trim_end_matches(") was sent").split_once(", ").unwrap();
        (t.parse().unwrap(), v.parse().unwrap())
    };
    let ((t1, v1), (t2, v2)) = (numbers(got), numbers(sent));
    assert_eq!((t1, v1), (t2, v2 + 1.0), "{msg}");
}

#[test]
fn graphite_needs_a_server_to_confirm() {
    let silent = listen(1, |_, _| {});
    let msg = failure(&bench(silent, "--server graphite"), 2);
    assert!(msg.contains("needs --confirm"), "{msg}");
    // Nothing listens at the read API: stopped before anything is sent.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let msg = failure(
        &bench(silent, &format!("--server graphite --confirm victoria:{closed}")),
        1,
    );
    assert!(
        msg.contains("cannot confirm") && msg.contains(&closed.to_string()),
        "{msg}"
    );
}

/// A metricsd process with a Graphite port on loopback, or None (with a
/// notice) when this build has no `--graphite-listen`.
struct GraphiteServer {
    child: Child,
    graphite: SocketAddr,
    addr: SocketAddr,
}

impl GraphiteServer {
    fn start() -> Option<GraphiteServer> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_metricsd"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--graphite-listen",
                "127.0.0.1:0",
                "--in-memory",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn metricsd");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let (mut graphite, mut addr) = (None, None);
        let mut line = String::new();
        // It prints both addresses before serving; a build without the flag
        // exits at once with its usage error.
        while addr.is_none() && stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
            let found = |prefix: &str| line.strip_prefix(prefix)?.split_whitespace().next()?.parse().ok();
            graphite = graphite.or_else(|| found("graphite listening on "));
            addr = addr.or_else(|| found("listening on "));
            line.clear();
        }
        let Some(graphite) = graphite else {
            let _ = child.wait();
            eprintln!("skipped: this metricsd has no --graphite-listen");
            return None;
        };
        // Keep draining stderr, so that the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Some(GraphiteServer {
            child,
            graphite,
            addr: addr.expect("the course protocol's address"),
        })
    }
}

impl Drop for GraphiteServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn graphite_stream_to_a_real_metricsd_graphite_port() {
    let Some(server) = GraphiteServer::start() else { return };
    let confirm = format!("--server graphite --confirm metricsd:{}", server.addr);
    for (args, points) in [
        ("--requests 5000 --connections 4 --pipeline 16 --keys 50", 5000),
        (
            "--requests 600 --connections 3 --rate 6000 --timestamp-base 1700000000",
            600,
        ),
    ] {
        let json = report(&bench(server.graphite, &format!("--json {confirm} {args}")));
        assert_eq!(json["points"], points, "{json}");
        assert_eq!(json["checked_series"], 3, "{json}");
    }
    let mut client = Client::new("127.0.0.1", server.addr.port(), Some(IO_TIMEOUT)).unwrap();
    let stats = client.stats().unwrap();
    let figure = |name: &str| stats.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(figure("points").as_deref(), Some("5600"));
    // The same stream again stores nothing new: the count stops short.
    let again = failure(
        &bench(
            server.graphite,
            &format!("{confirm} --requests 5000 --connections 4 --pipeline 16 --keys 50 --timeout 1"),
        ),
        1,
    );
    assert!(again.contains("0 of the 5000 points sent are stored"), "{again}");
}
