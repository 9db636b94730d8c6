//! Shared by the integration tests: a real `metricsd` process on 127.0.0.1:0,
//! and helpers to talk to it over real sockets.
#![allow(dead_code)] // each test binary uses its own subset

use metricsd::protocol::ResponseScanner;

#[path = "../../src/test_support.rs"]
mod test_support;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
#[allow(unused_imports)] // each test binary uses its own subset
pub use test_support::{poll_until, TempDir, XorShift};

/// How long any single read in a test may block before the test fails:
/// generous, so a slow CI machine is not a failure, but a hang is.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Looks at `probe` until it gives a value, for at most [`IO_TIMEOUT`];
/// fails the test saying what did not happen otherwise.
#[track_caller]
pub fn wait_for<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    match poll_until(IO_TIMEOUT, probe) {
        Some(value) => value,
        None => panic!("waited {IO_TIMEOUT:?} in vain for {what}"),
    }
}

/// Waits until `condition` holds, for at most [`IO_TIMEOUT`]; fails the
/// test saying what did not happen otherwise.
#[track_caller]
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    wait_for(what, || condition().then_some(()))
}

/// A metricsd child process, killed when dropped.
pub struct TestServer {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// Copies the server's stderr into `log` until the server closes it.
    drain: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts the server with `extra` flags on a free loopback port, in
    /// memory unless `extra` names a `--data-dir`.
    pub fn start(extra: &[&str]) -> TestServer {
        Self::start_with(Command::new(env!("CARGO_BIN_EXE_metricsd")), extra)
    }

    /// Starts the server from a prepared command (for `sh -c 'ulimit ...'`,
    /// or a `RUST_LOG` other than `warn`).
    pub fn start_with(mut cmd: Command, extra: &[&str]) -> TestServer {
        cmd.args(["--listen", "127.0.0.1:0"]);
        if !extra.contains(&"--data-dir") {
            cmd.arg("--in-memory");
        }
        if !cmd.get_envs().any(|(name, _)| name == "RUST_LOG") {
            cmd.env("RUST_LOG", "warn");
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn metricsd");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        // What it logs before listening (recovery) is kept with the rest.
        let mut early = String::new();
        let addr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("metricsd exited before listening: {early}"))
                .expect("read stderr");
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.parse().expect("address");
            }
            early.push_str(&line);
            early.push('\n');
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        let log = Arc::new(Mutex::new(early));
        let sink = Arc::clone(&log);
        let drain = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        TestServer {
            child,
            addr,
            log,
            drain: Some(drain),
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Open file descriptors of the server process: its listener, poll and
    /// reserves, and one per connection it holds.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("proc fd")
            .count()
    }

    /// CPU time used by the server process so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("proc stat");
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields of the whole line.
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Sends a signal (by name, `TERM`, `INT`, `KILL`) to the server.
    pub fn signal(&self, name: &str) {
        signal(self.child.id(), name);
    }

    /// Waits for the process to exit (bounded by [`IO_TIMEOUT`]) and returns
    /// its exit code (None: killed by a signal).
    pub fn wait_exit(&mut self) -> Option<i32> {
        let child = &mut self.child;
        let status = wait_for("metricsd to exit", || child.try_wait().expect("try_wait"));
        status.code()
    }

    /// SIGTERM, then waits for the graceful exit and checks it succeeded;
    /// returns the whole log.
    pub fn stop(mut self) -> String {
        self.signal("TERM");
        assert_eq!(self.wait_exit(), Some(0), "graceful stop failed: {}", self.log());
        // The stderr copier ends at the end of the server's output.
        let drain = self.drain.take().expect("the stderr copier");
        wait_until("the end of metricsd's stderr", || drain.is_finished());
        drain.join().expect("the stderr copier");
        self.log()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// A full round trip on a fresh connection: proof the server serves.
    pub fn assert_serves(&self) {
        let mut s = self.connect();
        assert_eq!(exchange(&mut s, b"get assert.serves.probe\n", 1), "ok\n\n");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads exactly `n` answers (each ending in an empty line) and returns
/// them as text. Fails the test on a timeout or an early close.
pub fn read_answers(stream: &mut TcpStream, n: usize) -> String {
    let mut buf = Vec::new();
    let mut scanner = ResponseScanner::new();
    let mut done = 0;
    let mut start = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    while done < n {
        while let Some(len) = scanner.check(&buf[start..]) {
            start += len;
            done += 1;
            if done == n {
                break;
            }
        }
        if done == n {
            break;
        }
        let got = stream.read(&mut chunk).expect("read answers");
        assert!(
            got > 0,
            "server closed after {done} of {n} answers: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..got]);
    }
    assert_eq!(start, buf.len(), "bytes beyond the expected answers");
    String::from_utf8(buf).expect("answers are UTF-8")
}

/// Sends `request` and reads `answers` answers.
pub fn exchange(stream: &mut TcpStream, request: &[u8], answers: usize) -> String {
    stream.write_all(request).expect("write request");
    read_answers(stream, answers)
}

/// Asserts that nothing more arrives within a short wait (for "no answer").
pub fn assert_silent(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut b = [0u8; 64];
    match stream.read(&mut b) {
        Ok(0) => panic!("connection closed"),
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&b[..n])),
        Err(e) => assert!(
            matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "{e}"
        ),
    }
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
}

/// Reads until the server closes the connection; returns what came before.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("read until close");
    out
}

pub const OK: &str = "ok\n\n";
pub const ERR: &str = "error\nwrong command\n\n";

/// Waits for `child`, whose stderr is piped, to exit (killing it and
/// failing the test if it has not within [`IO_TIMEOUT`]); returns its exit
/// code and all it wrote to stderr.
pub fn exit_and_stderr(mut child: Child) -> (Option<i32>, String) {
    let Some(status) = poll_until(IO_TIMEOUT, || child.try_wait().expect("try_wait")) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("waited {IO_TIMEOUT:?} in vain for the process to exit");
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("a piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status.code(), stderr)
}

/// Sends a signal to a process with kill(1): the tests need no libc.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Sends `stats` and returns its figures in order, checking the answer's
/// shape: `ok`, `<name> <integer>` lines, the empty line.
pub fn stats(stream: &mut TcpStream) -> Vec<(String, u64)> {
    let answer = exchange(stream, b"stats\n", 1);
    let body = answer
        .strip_prefix("ok\n")
        .expect("ok")
        .strip_suffix("\n\n")
        .expect("end");
    body.lines()
        .map(|line| {
            let (name, value) = line.split_once(' ').expect("two fields");
            (
                name.to_owned(),
                value.parse().unwrap_or_else(|_| panic!("integer: {line}")),
            )
        })
        .collect()
}

/// [`stats`] by name.
pub fn stats_map(stream: &mut TcpStream) -> std::collections::BTreeMap<String, u64> {
    stats(stream).into_iter().collect()
}
