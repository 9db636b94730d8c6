//! metricsctl, the real binary, against a real metricsd (one per test) and
//! against a fake server that refuses. Exact output, exit statuses and
//! counts; never timings.

mod common;

use common::{exit_and_stderr, TestServer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// metricsctl with `args`, talking to `addr`; stdin is `input`. The
/// --timeout bounds every wait, so a hang fails the test instead.
fn ctl_at(addr: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_metricsctl"))
        .args(["--addr", addr, "--timeout", "20"])
        .args(args)
        .env_remove("METRICSD_ADDR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run metricsctl");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written from a thread: metricsctl may stop reading early (a bad
    // import line) or print while it reads.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for metricsctl");
    writer.join().expect("stdin writer");
    out
}

fn ctl(server: &TestServer, args: &[&str]) -> Output {
    ctl_at(&server.addr.to_string(), args, b"")
}

/// Stdout of a run that must have succeeded silently on stderr.
fn stdout(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "stderr: {stderr}");
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

/// The one line on stderr of a run that must have failed with `code` and
/// printed nothing on stdout.
fn failure(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("metricsctl: ") && stderr.ends_with('\n'), "{stderr}");
    stderr
}

/// A server holding the assignment's example, plus a negative value.
fn example_server() -> TestServer {
    let server = TestServer::start(&[]);
    for args in [
        ["put", "palm.cpu", "2.0", "1150864247"],
        ["put", "palm.cpu", "0.5", "1150864248"],
        ["put", "palm.cpu", "-1.5", "1150864249"],
        ["put", "eardrum.cpu", "3", "1150864250"],
    ] {
        assert_eq!(stdout(&ctl(&server, &args)), "", "put prints nothing");
    }
    server
}

#[test]
fn get_for_people() {
    let server = example_server();
    assert_eq!(
        stdout(&ctl(&server, &["get", "*"])),
        "\
eardrum.cpu  1 point  min 3.0  max 3.0  last 3.0  ▄
  2006-06-21 04:30:50Z  1150864250  3.0

palm.cpu  3 points  min -1.5  max 2.0  last -1.5  █▅▁
  2006-06-21 04:30:47Z  1150864247   2.0
  2006-06-21 04:30:48Z  1150864248   0.5
  2006-06-21 04:30:49Z  1150864249  -1.5
"
    );
    assert_eq!(
        stdout(&ctl(&server, &["get", "eardrum.cpu"])),
        "eardrum.cpu  1 point  min 3.0  max 3.0  last 3.0  ▄\n  2006-06-21 04:30:50Z  1150864250  3.0\n"
    );
    assert_eq!(
        stdout(&ctl(&server, &["get", "nothing.here"])),
        "nothing.here: no points\n"
    );
}

#[test]
fn get_a_window_and_its_buckets() {
    let server = example_server();
    assert_eq!(
        stdout(&ctl(
            &server,
            &["get", "palm.cpu", "--from", "1150864248", "--to", "1150864249"]
        )),
        "\
palm.cpu  2 points  min -1.5  max 0.5  last -1.5  █▁
  2006-06-21 04:30:48Z  1150864248   0.5
  2006-06-21 04:30:49Z  1150864249  -1.5
"
    );
    assert_eq!(
        stdout(&ctl(&server, &["get", "*", "--from", "1150864249", "--raw"])),
        "eardrum.cpu 3.0 1150864250\npalm.cpu -1.5 1150864249\n"
    );
    // Buckets of 2 s start at even seconds, the first before the window.
    assert_eq!(
        stdout(&ctl(
            &server,
            &["get", "*", "--from", "1150864247", "--step", "2s", "--agg", "sum"]
        )),
        "\
eardrum.cpu  1 bucket of 2s by sum  min 3.0  max 3.0  last 3.0  ▄
  2006-06-21 04:30:50Z  1150864250  3.0

palm.cpu  2 buckets of 2s by sum  min -1.0  max 2.0  last -1.0  █▁
  2006-06-21 04:30:46Z  1150864246   2.0
  2006-06-21 04:30:48Z  1150864248  -1.0
"
    );
    assert_eq!(
        stdout(&ctl(
            &server,
            &["get", "palm.cpu", "--step", "1m", "--agg", "count", "--json"]
        )),
        "{\"palm.cpu\":[[1150864200,3.0]]}\n"
    );
    assert_eq!(
        stdout(&ctl(&server, &["get", "palm.cpu", "--to", "0"])),
        "palm.cpu: no points\n"
    );
}

#[test]
fn get_raw_is_the_protocol_lines() {
    let server = example_server();
    assert_eq!(
        stdout(&ctl(&server, &["get", "*", "--raw"])),
        "eardrum.cpu 3.0 1150864250\npalm.cpu 2.0 1150864247\npalm.cpu 0.5 1150864248\npalm.cpu -1.5 1150864249\n"
    );
    assert_eq!(
        stdout(&ctl(&server, &["--raw", "get", "palm.cpu"])),
        "palm.cpu 2.0 1150864247\npalm.cpu 0.5 1150864248\npalm.cpu -1.5 1150864249\n"
    );
    assert_eq!(stdout(&ctl(&server, &["get", "nothing.here", "--raw"])), "");
}

#[test]
fn get_json() {
    let server = example_server();
    assert_eq!(
        stdout(&ctl(&server, &["get", "*", "--json"])),
        "{\"eardrum.cpu\":[[1150864250,3.0]],\
         \"palm.cpu\":[[1150864247,2.0],[1150864248,0.5],[1150864249,-1.5]]}\n"
    );
    assert_eq!(stdout(&ctl(&server, &["get", "nothing.here", "--json"])), "{}\n");
}

#[test]
fn json_escapes_keys_and_keeps_every_value_exact() {
    let server = TestServer::start(&[]);
    let keys = [r#"quote"and\backslash"#, "ж.😀", "tab.less"];
    let values = [-0.0, 1e300, 0.1 + 0.2, -4.9e-324, f64::MAX];
    for key in keys {
        for (ts, value) in values.iter().enumerate() {
            let out = ctl(&server, &["put", key, &format!("{value:?}"), &ts.to_string()]);
            assert_eq!(stdout(&out), "");
        }
    }
    let text = stdout(&ctl(&server, &["get", "*", "--json"]));
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let object = json.as_object().expect("an object");
    assert_eq!(object.len(), keys.len());
    for key in keys {
        let points = object[key].as_array().expect("points");
        let got: Vec<(i64, u64)> = points
            .iter()
            .map(|p| (p[0].as_i64().expect("ts"), p[1].as_f64().expect("value").to_bits()))
            .collect();
        let want: Vec<(i64, u64)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64, v.to_bits()))
            .collect();
        assert_eq!(got, want, "{key}");
    }
}

#[test]
fn put_takes_negative_numbers_and_defaults_to_now() {
    let server = TestServer::start(&[]);
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_eq!(stdout(&ctl(&server, &["put", "k", "-2.5"])), "");
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_eq!(stdout(&ctl(&server, &["put", "k", "-1e3", "-20"])), "");
    let raw = stdout(&ctl(&server, &["get", "k", "--raw"]));
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(lines[0], "k -1000.0 -20");
    let now: i64 = lines[1]
        .strip_prefix("k -2.5 ")
        .expect("the second point")
        .parse()
        .unwrap();
    assert!((before..=after).contains(&now), "{now} not in {before}..={after}");
    assert_eq!(lines.len(), 2);
}

#[test]
fn delete_removes_each_key_given() {
    let server = example_server();
    assert_eq!(
        stdout(&ctl(&server, &["put", "eardrum.memory", "4200000", "1503320872"])),
        ""
    );
    assert_eq!(
        stdout(&ctl(&server, &["delete", "palm.cpu", "eardrum.cpu", "never.there"])),
        ""
    );
    assert_eq!(
        stdout(&ctl(&server, &["get", "*", "--raw"])),
        "eardrum.memory 4200000.0 1503320872\n"
    );
    // `*` is refused before anything is sent: the other key stays.
    failure(&ctl(&server, &["delete", "eardrum.memory", "*"]), 2);
    assert_eq!(
        stdout(&ctl(&server, &["get", "eardrum.memory", "--raw"])),
        "eardrum.memory 4200000.0 1503320872\n"
    );
}

#[test]
fn stats_in_each_format() {
    let server = example_server();
    let table = stdout(&ctl(&server, &["stats"]));
    let value_of = |name: &str| {
        table
            .lines()
            .find_map(|l| l.strip_prefix(name).filter(|rest| rest.starts_with(' ')))
            .unwrap_or_else(|| panic!("no {name} in {table}"))
            .trim()
            .to_owned()
    };
    assert_eq!(value_of("points"), "4");
    assert_eq!(value_of("series"), "2");
    assert_eq!(value_of("requests.put"), "4");
    assert!(value_of("bytes.in").ends_with(" B"), "{table}");
    let uptime = value_of("uptime_seconds");
    assert!(
        uptime.len() >= 8 && uptime.bytes().rev().take(8).all(|b| b.is_ascii_digit() || b == b':'),
        "uptime {uptime:?}"
    );
    // Values start in one column: where the first run of spaces ends.
    let value_start = |line: &str| {
        let name_end = line.find(' ').expect("two columns");
        name_end + line[name_end..].find(|c| c != ' ').expect("a value")
    };
    let columns: std::collections::HashSet<usize> = table.lines().map(value_start).collect();
    assert_eq!(columns.len(), 1, "{table}");

    let raw = stdout(&ctl(&server, &["stats", "--raw"]));
    assert!(raw.lines().any(|l| l == "points 4"), "{raw}");
    assert!(raw.lines().all(|l| l.split(' ').count() == 2), "{raw}");

    let json: serde_json::Value = serde_json::from_str(&stdout(&ctl(&server, &["stats", "--json"]))).expect("JSON");
    assert_eq!(json["points"].as_u64(), Some(4));
    assert_eq!(json["series"].as_u64(), Some(2));
    assert_eq!(json.as_object().expect("object").len(), raw.lines().count());
}

/// `n` points over 7 keys, in all the forms import takes, with comments,
/// blank lines and CRLF endings mixed in; returns the input and how many
/// points each key gets.
fn import_input(n: usize) -> (String, [usize; 7]) {
    let mut input = String::from("# exported from somewhere\n\n");
    let mut counts = [0; 7];
    for i in 0..n {
        let key = i % 7;
        counts[key] += 1;
        match i % 4 {
            0 => input.push_str(&format!("bulk.k{key} {}.5 {i}\n", i)),
            1 => input.push_str(&format!("put bulk.k{key} -{i} {i}\r\n")),
            2 => input.push_str(&format!("\tbulk.k{key}\t{i}e-3  {i} \n")),
            _ => input.push_str(&format!("bulk.k{key} {i} {i}\n# a comment\n   \n")),
        }
    }
    (input, counts)
}

#[test]
fn import_stores_thousands_of_points() {
    let server = TestServer::start(&[]);
    let (input, counts) = import_input(10_000);
    let out = ctl_at(&server.addr.to_string(), &["import"], input.as_bytes());
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("imported 10000 points in "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let raw = stdout(&ctl(&server, &["get", "*", "--raw"]));
    assert_eq!(raw.lines().count(), 10_000);
    for (key, count) in counts.iter().enumerate() {
        let prefix = format!("bulk.k{key} ");
        assert_eq!(
            raw.lines().filter(|l| l.starts_with(&prefix)).count(),
            *count,
            "bulk.k{key}"
        );
    }
    assert!(raw.lines().any(|l| l == "bulk.k1 -1.0 1"), "the put form");
    assert!(raw.lines().any(|l| l == "bulk.k2 0.002 2"), "tabs and exponents");

    // What --raw prints, import takes back: a copy of the whole store.
    let copy = TestServer::start(&[]);
    let out = ctl_at(&copy.addr.to_string(), &["import"], raw.as_bytes());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&ctl(&copy, &["get", "*", "--raw"])), raw);
}

#[test]
fn a_bad_import_line_stops_there_after_storing_what_came_before() {
    let server = TestServer::start(&[]);
    // More than one batch (4096 points) before the bad line, so that both
    // a full batch and the partial one after it are stored first.
    let mut input: String = (0..5000).map(|i| format!("before {i} {i}\n")).collect();
    input.push_str("# the next line is line 5002\nbad.value oops 1\nafter 1 1\n");
    let out = ctl_at(&server.addr.to_string(), &["import"], input.as_bytes());
    assert_eq!(
        failure(&out, 1),
        "metricsctl: line 5002: invalid value \"oops\": not a finite decimal number; \
         stopped there, after storing the 5000 points before it\n"
    );
    let raw = stdout(&ctl(&server, &["get", "*", "--raw"]));
    assert_eq!(raw.lines().count(), 5000);
    assert!(raw.lines().all(|l| l.starts_with("before ")));

    let out = ctl_at(&server.addr.to_string(), &["import"], b"ok.key 1 1\nput only.three 1\n");
    assert_eq!(
        failure(&out, 1),
        "metricsctl: line 2: a put line is put KEY VALUE TIMESTAMP; this one lacks a field; \
         stopped there, after storing the 1 point before it\n"
    );
}

#[test]
fn connection_refused_is_one_line_and_exit_1() {
    // A port that was free a moment ago, and nobody listens on now.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    for args in [&["get", "k"][..], &["put", "k", "1"], &["stats"], &["import"]] {
        let out = ctl_at(&addr, args, b"");
        assert_eq!(
            failure(&out, 1),
            format!("metricsctl: cannot connect to {addr}: Connection refused\n"),
            "{args:?}"
        );
    }
}

#[test]
fn a_refused_put_names_the_server_and_the_request() {
    // A fake server that answers one request with the error a full disk
    // gives.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let fake = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut byte = [0];
        while request.last() != Some(&b'\n') && stream.read(&mut byte).unwrap() == 1 {
            request.push(byte[0]);
        }
        stream.write_all(b"error\nnot stored: no space left\n\n").unwrap();
        request
    });
    let out = ctl_at(&addr, &["put", "palm.cpu", "1", "7"], b"");
    assert_eq!(
        failure(&out, 1),
        format!("metricsctl: {addr}: put palm.cpu: server error: not stored: no space left\n")
    );
    assert_eq!(fake.join().unwrap(), b"put palm.cpu 1.0 7\n");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let server = TestServer::start(&[]);
    let cases: &[&[&str]] = &[
        &[],
        &["frob"],
        &["put", "k"],
        &["put", "k", "abc"],
        &["put", "*", "1"],
        &["put", "k", "1", "2.5"],
        &["get"],
        &["get", "a b"],
        &["get", "k", "--raw", "--json"],
        &["import", "--json"],
        &["stats", "extra"],
        &["stats", "--verbose"],
        &["--timeout", "0", "stats"],
    ];
    for args in cases {
        let message = failure(&ctl(&server, args), 2);
        assert!(message.ends_with(" (see 'metricsctl --help')\n"), "{args:?}: {message}");
    }
    let out = ctl_at("no-port-here", &["stats"], b"");
    assert_eq!(
        failure(&out, 2),
        "metricsctl: --addr: \"no-port-here\" is not HOST:PORT (see 'metricsctl --help')\n"
    );
    // Nothing was stored by any of them.
    assert_eq!(stdout(&ctl(&server, &["get", "*", "--raw"])), "");
}

#[test]
fn help_and_version() {
    let server = TestServer::start(&[]);
    let help = stdout(&ctl(&server, &["--help"]));
    assert!(help.starts_with("usage: metricsctl [OPTIONS] COMMAND\n"), "{help}");
    for command in ["put KEY VALUE [TS]", "get KEY", "stats", "import"] {
        assert!(help.contains(&format!("  {command}")), "{command}");
    }
    assert_eq!(stdout(&ctl(&server, &["get", "-h"])), help);
    assert_eq!(
        stdout(&ctl(&server, &["-V"])),
        format!("metricsctl {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn metricsd_addr_names_the_server_when_addr_does_not() {
    let server = example_server();
    let run = |env: &str| {
        Command::new(env!("CARGO_BIN_EXE_metricsctl"))
            .args(["get", "eardrum.cpu", "--raw", "--timeout", "20"])
            .env("METRICSD_ADDR", env)
            .stdin(Stdio::null())
            .output()
            .expect("run metricsctl")
    };
    assert_eq!(stdout(&run(&server.addr.to_string())), "eardrum.cpu 3.0 1150864250\n");
    assert_eq!(
        failure(&run("nonsense"), 2),
        "metricsctl: METRICSD_ADDR: \"nonsense\" is not HOST:PORT (see 'metricsctl --help')\n"
    );
}

/// Runs `binary` with `args` and its stdout into `stdout`, stderr piped;
/// stdin is empty.
fn spawn_into(binary: &str, args: &[&str], stdout: std::io::PipeWriter) -> Child {
    Command::new(binary)
        .args(args)
        .env_remove("METRICSD_ADDR")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

#[test]
fn a_closed_stdout_ends_every_binary_quietly_with_status_0() {
    let server = TestServer::start(&[]);
    let addr = server.addr.to_string();
    let ctl = env!("CARGO_BIN_EXE_metricsctl");
    let cases: &[(&str, &[&str])] = &[
        (ctl, &["--help"]),
        (ctl, &["-V"]),
        (ctl, &["--addr", &addr, "get", "*"]),
        (ctl, &["--addr", &addr, "stats"]),
        (env!("CARGO_BIN_EXE_metricsd"), &["--help"]),
        (env!("CARGO_BIN_EXE_metricsd"), &["--version"]),
        (env!("CARGO_BIN_EXE_metricsd-bench"), &["--help"]),
    ];
    for &(binary, args) in cases {
        // The reader is gone before the first byte is written: every
        // write fails (EPIPE), with no race about when.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let (code, stderr) = exit_and_stderr(spawn_into(binary, args, writer));
        assert_eq!((code, stderr.as_str()), (Some(0), ""), "{binary} {args:?}");
    }
}

#[test]
fn a_reader_that_leaves_after_one_line_ends_get_quietly_with_status_0() {
    let server = TestServer::start(&[]);
    let addr = server.addr.to_string();
    let input: String = (0..20_000).map(|i| format!("many.k{} {i} {i}\n", i % 10)).collect();
    let out = ctl_at(&addr, &["import"], input.as_bytes());
    assert!(out.status.success(), "{out:?}");
    for format in [&[][..], &["--raw"], &["--json"]] {
        // As `metricsctl get '*' | head -1`: the answer is far more than a
        // pipe holds (64 KiB), so metricsctl is still writing when the
        // reader leaves.
        let (mut reader, writer) = std::io::pipe().expect("pipe");
        let args = [&["--addr", &addr, "--timeout", "20", "get", "*"][..], format].concat();
        let child = spawn_into(env!("CARGO_BIN_EXE_metricsctl"), &args, writer);
        let mut first = [0; 64];
        reader.read_exact(&mut first).expect("read the first bytes");
        assert!(
            first.starts_with(b"many.k0 ") || first.starts_with(b"{\"many.k0\":"),
            "{first:?}"
        );
        drop(reader);
        let (code, stderr) = exit_and_stderr(child);
        assert_eq!((code, stderr.as_str()), (Some(0), ""), "{format:?}");
    }
}

#[test]
fn timestamps_that_look_like_milliseconds_are_stored_with_a_warning() {
    let server = TestServer::start(&[]);
    let out = ctl(&server, &["put", "ms.key", "1", "1150864247000"]);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "metricsctl: warning: timestamp 1150864247000 looks like milliseconds, but timestamps are seconds: \
         it is +38439-06-09 01:03:20Z, where 1150864247 would be 2006-06-21 04:30:47Z; stored as given\n"
    );
    // 10^11 seconds (the year 5138) is the last timestamp taken for seconds.
    assert_eq!(stdout(&ctl(&server, &["put", "ms.key", "2", "100000000000"])), "");
    assert_eq!(
        stdout(&ctl(&server, &["get", "ms.key", "--raw"])),
        "ms.key 2.0 100000000000\nms.key 1.0 1150864247000\n"
    );

    // import: one line for the first such point, then the summary.
    let input = b"ok.key 1 1150864247\nms.a 1 1150864247000\nms.b 1 1150864250000\n";
    let out = ctl_at(&server.addr.to_string(), &["import"], input);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(
        lines[0],
        "metricsctl: line 2: warning: timestamp 1150864247000 looks like milliseconds, but timestamps are \
         seconds: it is +38439-06-09 01:03:20Z, where 1150864247 would be 2006-06-21 04:30:47Z; imported as \
         given (later lines like it are not reported)"
    );
    assert!(lines[1].starts_with("imported 3 points in "), "{stderr}");
    assert_eq!(
        stdout(&ctl(&server, &["get", "ms.b", "--raw"])),
        "ms.b 1.0 1150864250000\n"
    );
}

#[test]
fn a_key_with_a_star_is_one_key_and_an_empty_get_says_so() {
    let server = TestServer::start(&[]);
    assert_eq!(stdout(&ctl(&server, &["put", "raw.1", "1", "1"])), "");
    let note = "metricsctl: note: only a bare '*' is a wildcard; \"raw.*\" was looked up as one key, \
                which has no points\n";
    for (args, printed) in [
        (&["get", "raw.*"][..], "raw.*: no points\n"),
        (&["get", "raw.*", "--raw"], ""),
        (&["get", "raw.*", "--json"], "{}\n"),
    ] {
        let out = ctl(&server, args);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), printed, "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), note, "{args:?}");
    }
    // Such a key exists like any other, and then nothing is said.
    assert_eq!(stdout(&ctl(&server, &["put", "raw.*", "5", "5"])), "");
    assert_eq!(stdout(&ctl(&server, &["get", "raw.*", "--raw"])), "raw.* 5.0 5\n");
    // The bare '*' is no occasion either, even on an empty match.
    let empty = TestServer::start(&[]);
    assert_eq!(stdout(&ctl(&empty, &["get", "*"])), "no series\n");
}
