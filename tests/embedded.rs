//! The server embedded in a program: bind on port 0, serve from a thread,
//! stop through a Handle.

use metricsd::server::{Config, Server, StartError};
use metricsd::Client;
use std::time::Duration;

/// Default limits on a free loopback port.
fn local() -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    }
}

#[test]
fn bind_serve_and_shut_down_from_another_thread() {
    let server = Server::bind(local()).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "the real port is reported");
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());

    let mut client = Client::new("127.0.0.1", addr.port(), Some(Duration::from_secs(20))).unwrap();
    client.put("embedded", 1.5, Some(7)).unwrap();
    assert_eq!(client.get("embedded").unwrap()["embedded"], [(7, 1.5)]);

    handle.shutdown();
    thread.join().unwrap().unwrap();
    // The listener is gone with the server.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn binding_an_address_in_use_is_an_error() {
    let first = Server::bind(local()).unwrap();
    let taken = first.local_addr().to_string();
    let err = Server::bind(Config {
        listen: taken,
        ..Config::default()
    })
    .err()
    .expect("second bind fails");
    assert!(
        matches!(&err, StartError::Listen { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse),
        "{err:?}"
    );
}

#[test]
fn zero_limits_are_refused() {
    for zero in 0..3 {
        let mut config = local();
        match zero {
            0 => config.limits.max_line_bytes = 0,
            1 => config.limits.max_pending_output = 0,
            _ => config.max_connections = 0,
        }
        let err = Server::bind(config).err().expect("a zero limit is refused");
        assert!(matches!(err, StartError::Invalid(_)), "{err:?}");
    }
}
