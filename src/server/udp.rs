//! Graphite's UDP socket: datagrams of plaintext lines, read a bounded
//! number per loop turn so that a flood of them cannot starve the TCP
//! connections, and handed to the session module's sans-IO reader.

use crate::engine::Engine;
use crate::session::{receive_graphite_datagram, Limits};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::io::{self, ErrorKind};
use std::net::SocketAddr;

/// Datagram bytes read in one turn. The kernel's default receive buffer
/// for a UDP socket is 208 KiB (`net.core.rmem_default`), so one turn can
/// empty a full buffer, while the turn's UDP work stays that of four full
/// reads of a TCP connection (64 KiB each), about a millisecond of parsing.
const DATAGRAM_BYTES_PER_TURN: usize = 256 * 1024;
/// Datagrams read in one turn whatever their size: each costs a syscall,
/// so a flood of empty or tiny ones is bounded too (as accepts are, by
/// `MAX_ACCEPTS_PER_TURN`).
const DATAGRAMS_PER_TURN: usize = 256;
/// The largest UDP payload (65,535 bytes less the 8-byte UDP header over
/// IPv6, less IPv4's 20-byte header too): a read buffer this large never
/// truncates a datagram.
const MAX_DATAGRAM: usize = 65_527;

/// The Graphite UDP socket and whether it may have datagrams waiting.
pub struct GraphiteUdp {
    socket: UdpSocket,
    readiness: Readiness,
}

/// Whether the socket may have datagrams (it is registered edge-triggered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    /// Read until WouldBlock: nothing until the poll reports more.
    Drained,
    /// The poll said readable, or the last turn's budget ran out first.
    Readable,
}

impl GraphiteUdp {
    /// Binds `addr`; readable from the start, as a datagram may already wait.
    pub fn bind(addr: SocketAddr) -> io::Result<GraphiteUdp> {
        Ok(GraphiteUdp {
            socket: UdpSocket::bind(addr)?,
            readiness: Readiness::Readable,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("a bound socket has a local address")
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.socket, token, Interest::READABLE)
    }

    /// No more datagrams: the server is stopping.
    pub fn deregister(&mut self, registry: &Registry) {
        if let Err(e) = registry.deregister(&mut self.socket) {
            log::debug!("deregister the graphite UDP socket: {e}");
        }
    }

    pub fn mark_ready(&mut self) {
        self.readiness = Readiness::Readable;
    }

    /// Whether datagrams may be waiting without the poll saying so again.
    pub fn is_ready(&self) -> bool {
        self.readiness == Readiness::Readable
    }

    /// Reads and stores datagrams until the socket is empty or the turn's
    /// budget is spent (then it stays ready for the next turn).
    pub fn serve(&mut self, scratch: &mut [u8], engine: &mut Engine, limits: &Limits) {
        debug_assert!(scratch.len() >= MAX_DATAGRAM, "datagrams would be truncated");
        if self.readiness == Readiness::Drained {
            return;
        }
        let mut bytes = 0;
        for _ in 0..DATAGRAMS_PER_TURN {
            if bytes >= DATAGRAM_BYTES_PER_TURN {
                return;
            }
            match self.socket.recv_from(scratch) {
                Ok((n, peer)) => {
                    bytes += n;
                    receive_graphite_datagram(&scratch[..n], peer, engine, limits);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.readiness = Readiness::Drained;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // Nothing a sender does makes recvfrom fail on an
                    // unconnected socket; wait for the next edge rather than
                    // spin on an error.
                    log::warn!("graphite UDP receive failed: {e}");
                    self.readiness = Readiness::Drained;
                    return;
                }
            }
        }
    }
}
