//! What kind of metricsd the run talks to, asked before anything is
//! written, and the clean-up after it: a benchmark must not leave its
//! points in someone's durable store unasked.

use metricsd::{Client, ClientError};
use std::net::SocketAddr;
use std::time::Duration;

/// Whether the server keeps what it is sent (its `store.durable` figure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    InMemory,
    Durable,
}

impl Mode {
    /// For the report: `in-memory` or `durable`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::InMemory => "in-memory",
            Mode::Durable => "durable",
        }
    }
}

fn client(addr: SocketAddr, timeout: Duration) -> Result<Client, ClientError> {
    Client::new(&addr.ip().to_string(), addr.port(), Some(timeout))
}

/// Asks the server at `addr` for `stats` and reads its mode; None when
/// the figures do not say (an older metricsd, or not metricsd).
pub fn ask(addr: SocketAddr, timeout: Duration) -> Result<Option<Mode>, ClientError> {
    let figures = client(addr, timeout)?.stats()?;
    Ok(match figures.iter().find(|(name, _)| name == "store.durable") {
        Some((_, value)) if value == "0" => Some(Mode::InMemory),
        Some(_) => Some(Mode::Durable),
        None => None,
    })
}

/// Deletes `keys` from the server at `addr`; returns how many.
pub fn clean_up<'k>(
    addr: SocketAddr,
    keys: impl Iterator<Item = &'k str>,
    timeout: Duration,
) -> Result<usize, ClientError> {
    let mut client = client(addr, timeout)?;
    let mut deleted = 0;
    for key in keys {
        client.delete(key)?;
        deleted += 1;
    }
    Ok(deleted)
}
