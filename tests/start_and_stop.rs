//! What an operator meets when starting and signalling the real binary:
//! signals that must not kill the server, and start-up failures whose
//! messages say what was being done and where.

mod common;

use common::{exit_and_stderr, wait_until, TempDir, TestServer};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs metricsd with `args` in the working directory `cwd` until it exits
/// (it must, within [`common::IO_TIMEOUT`]); returns its status and stderr.
fn run_to_exit(cwd: &Path, args: &[&str]) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_metricsd"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run metricsd");
    exit_and_stderr(child)
}

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

#[test]
fn a_file_in_the_way_of_the_data_directory_is_named_with_its_absolute_path() {
    let tmp = TempDir::new("in-the-way");
    std::fs::write(tmp.0.join("afile"), "not a directory").unwrap();
    let (code, stderr) = run_to_exit(&tmp.0, &["--listen", "127.0.0.1:0", "--data-dir", "afile"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "metricsd: cannot create data directory {}/afile: a file is in the way\n",
            tmp.path()
        )
    );
    // A file further up the path is named.
    let (code, stderr) = run_to_exit(&tmp.0, &["--listen", "127.0.0.1:0", "--data-dir", "afile/data"]);
    assert_eq!(code, Some(1), "{stderr}");
    let abs = tmp.path();
    assert_eq!(
        stderr,
        format!("metricsd: cannot create data directory {abs}/afile/data: a file is in the way: {abs}/afile\n")
    );
    assert_eq!(tmp.files(), ["afile"]);
}

#[test]
fn a_directory_the_system_refuses_to_create_is_named_with_the_reason() {
    // /sys takes no new directories, even from root (whom file modes
    // would not stop).
    let (code, stderr) = run_to_exit(
        Path::new("/"),
        &["--listen", "127.0.0.1:0", "--data-dir", "/sys/metricsd-test"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with("metricsd: cannot create data directory /sys/metricsd-test: ")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn a_data_directory_in_use_names_the_other_server_and_what_to_do() {
    let tmp = TempDir::new("in-use");
    let data = tmp.0.join("data");
    let data = data.to_str().expect("UTF-8 path");
    let server = TestServer::start(&["--data-dir", data]);
    // The same directory by another, relative, name.
    let (code, stderr) = run_to_exit(&tmp.0, &["--listen", "127.0.0.1:0", "--data-dir", "./data"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "metricsd: cannot lock data directory {data}: it is in use by another metricsd (pid {}); \
             stop that one, or give this one another --data-dir\n",
            server.child.id()
        )
    );
    server.assert_serves();
}

#[test]
fn a_bad_listen_address_is_refused_before_the_data_directory_is_created() {
    let tmp = TempDir::new("bad-listen");
    for listen in ["8888", "127.0.0.1", ":8888", "127.0.0.1:99999", "127.0.0.1:port"] {
        let (code, stderr) = run_to_exit(&tmp.0, &["--listen", listen, "--data-dir", "data"]);
        assert_eq!(code, Some(2), "{listen}: {stderr}");
        assert_eq!(
            stderr,
            format!(
                "metricsd: --listen takes HOST:PORT such as 127.0.0.1:8888, not {listen:?} (see 'metricsd --help')\n"
            )
        );
    }
    // A name that does not resolve (.invalid never does, RFC 6761).
    let (code, stderr) = run_to_exit(
        &tmp.0,
        &["--listen", "metricsd-test.invalid:8888", "--data-dir", "data"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("metricsd: --listen metricsd-test.invalid:8888: cannot resolve metricsd-test.invalid: ")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(tmp.files().is_empty(), "{:?}", tmp.files());
}

#[test]
fn the_start_up_log_names_the_absolute_data_directory() {
    let tmp = TempDir::new("start-up-log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metricsd"));
    cmd.current_dir(&tmp.0).env("RUST_LOG", "info");
    let server = TestServer::start_with(cmd, &["--data-dir", "data", "--fsync", "always"]);
    let line = format!("data in {}/data (fsync always)", tmp.path());
    wait_until(&line, || server.log().contains(&line));
    assert_eq!(tmp.files(), ["data"]);
    server.stop();
}
