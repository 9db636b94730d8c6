//! An independently written Python client, done the way the course assignment
//! describes (`tests/python/seed_client.py`), passes the assignment's checks
//! against the real server: compatibility with existing clients.

mod common;

use common::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The Python checks take well under a second; this only bounds a hang.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn python_seed_client_passes_the_assignment_checks() {
    let server = TestServer::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/seed_client.py");
    let mut child = match Command::new("python3")
        .arg(script)
        .arg(server.addr.port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("cannot run python3 (it is required for this test, not optional): {e}"),
    };
    // Drain both pipes in threads so the child can never block on a full one.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).map(|_| s)
    });
    let Some(status) = poll_until(SCRIPT_TIMEOUT, || child.try_wait().expect("wait for python3")) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("python3 {script} did not finish within {SCRIPT_TIMEOUT:?}");
    };
    let stdout = out.join().unwrap().expect("python stdout is UTF-8");
    let stderr = err.join().unwrap().expect("python stderr is UTF-8");
    assert!(
        status.success(),
        "python3 {script} failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        server.log()
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("python client: "))
        .unwrap_or_else(|| panic!("no summary line in stdout:\n{stdout}\nstderr:\n{stderr}"));
    let passed: usize = summary
        .strip_prefix("python client: ")
        .and_then(|rest| rest.strip_suffix(" passed, 0 failed"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected summary {summary:?}\nstderr:\n{stderr}"));
    assert!(passed >= 7, "only {passed} checks ran: {summary:?}");
    assert!(stderr.is_empty(), "python wrote to stderr:\n{stderr}");
    // The server is still serving after the Python client's session.
    server.assert_serves();
}
