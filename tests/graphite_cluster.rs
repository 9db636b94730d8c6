//! graphite-web's cluster requests against a real node:
//! tests/python/graphite_remote.py asks `/metrics/find/?format=pickle` and
//! `/render/?format=pickle` as graphite-web 1.1's RemoteFinder and
//! RemoteReader do, unpickles the answers with graphite-web's safe-class
//! unpickler, and checks every series and node exactly.

mod common;

use common::{wait_for, TestServer};
use std::net::SocketAddr;
use std::process::Command;

#[test]
fn graphite_webs_remote_finder_and_reader_read_a_node() {
    let server = TestServer::start(&["--http-listen", "127.0.0.1:0"]);
    let http: SocketAddr = wait_for("the HTTP address in the log", || {
        (server.log().lines())
            .find_map(|l| l.strip_prefix("HTTP API and page on http://"))
            .and_then(|rest| rest.trim_end_matches('/').parse().ok())
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/graphite_remote.py");
    // The script's own requests time out after 10 s each, so it ends.
    let out = Command::new("python3")
        .args([script, &server.addr.port().to_string(), &http.port().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (it is required for this test, not optional): {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{script} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        out.status,
        server.log()
    );
    let passed: usize = (stdout.lines())
        .find_map(|l| l.strip_prefix("graphite remote: "))
        .and_then(|rest| rest.strip_suffix(" checks passed"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line in stdout:\n{stdout}\nstderr:\n{stderr}"));
    assert!(passed >= 20, "only {passed} checks ran");
    server.assert_serves();
}
