//! What an operator meets when starting and signalling the real binary:
//! signals that must not kill the server, and start-up failures whose
//! messages say what was being done and where.

mod common;

use common::{wait_until, TestServer};

#[test]
fn sighup_sigusr1_and_sigusr2_are_logged_and_ignored() {
    let mut server = TestServer::start(&[]);
    let expected = [
        (
            "HUP",
            "SIGHUP ignored: there is nothing to reload (no configuration file) or reopen (logs go to stderr)",
        ),
        (
            "USR1",
            "SIGUSR1 ignored: metricsd gives it no meaning (SIGTERM or SIGINT stop it)",
        ),
        (
            "USR2",
            "SIGUSR2 ignored: metricsd gives it no meaning (SIGTERM or SIGINT stop it)",
        ),
    ];
    for (signal, line) in expected {
        server.signal(signal);
        // Until the line, or the end of the server (which fails at once).
        wait_until(&format!("the log line for SIG{signal}"), || {
            server.log().contains(line) || !server.is_running()
        });
        assert!(server.is_running(), "SIG{signal} ended the server: {}", server.log());
        server.assert_serves();
    }
    // Twice more: each is ignored anew, and none counts as a first signal
    // that would make the next SIGTERM exit at once.
    server.signal("HUP");
    server.signal("USR1");
    wait_until("the second SIGHUP and SIGUSR1 lines", || {
        let log = server.log();
        log.matches("SIGHUP ignored").count() == 2 && log.matches("SIGUSR1 ignored").count() == 2
    });
    server.assert_serves();
    // SIGTERM still stops it gracefully, with status 0 (`stop` checks).
    let log = server.stop();
    assert!(!log.contains("exiting at once"), "{log}");
}
