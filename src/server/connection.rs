//! One client connection: its socket, its readiness, and the session that
//! speaks the connection's protocol (which keeps the connection's buffers).
//!
//! The event loop reads every connection into one shared scratch buffer and
//! the session answers straight from it. The connection does the socket's
//! part: one bounded read per service call, writing what the session may
//! send, and the lingering close of a stopping server.

use crate::engine::{Engine, EngineError, Event};
use crate::session::{Limits, Phase, Protocol, Session};
use mio::net::TcpStream;
use mio::Interest;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

/// What the event loop should do with a connection after servicing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do until the poll reports readiness.
    Wait,
    /// More work is ready now (unread input, held-back requests, or the
    /// rest of an answer): service it again next turn, after the other
    /// connections.
    Again,
    /// The peer is gone, the session is done or an I/O error happened:
    /// drop the connection.
    Close,
    /// Work is left but all connections' output has reached
    /// `--max-output-memory`: wait in the loop's queue for room (besides
    /// readiness, as with `Wait`).
    WaitForRoom,
}

/// What the socket may have for us to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    /// Read until WouldBlock, or a short read: nothing until the next edge.
    Drained,
    /// The poll said readable.
    Readable,
    /// A short read does not prove the socket drained: after a hang-up or
    /// an error (whose edge is spent, with the end of stream behind the
    /// data) and after urgent data (a read stops at the urgent mark). Read
    /// on until WouldBlock, end of stream or an error.
    UntilWouldBlock,
}

pub struct Connection {
    stream: TcpStream,
    readiness: Readiness,
    session: Session,
    /// When the peer last sent a whole request or took answer bytes
    /// (`--idle-timeout`); kept by the event loop.
    pub(super) last_active: Instant,
    /// The interest currently registered with the poll.
    registered: Interest,
    /// In the event loop's queue of connections to service.
    pub(super) queued: bool,
    /// In the event loop's queue of connections waiting for output memory.
    pub(super) waiting: bool,
}

impl Connection {
    /// A connection registered (by the caller) for [`Connection::BASE_INTEREST`],
    /// speaking `protocol`.
    pub fn new(stream: TcpStream, peer: SocketAddr, protocol: Protocol, limits: &Limits, now: Instant) -> Self {
        Connection {
            stream,
            readiness: Readiness::Drained,
            session: Session::new(protocol, peer, limits),
            last_active: now,
            registered: Self::BASE_INTEREST,
            queued: false,
            waiting: false,
        }
    }

    /// Always registered: READABLE, so a reset or close is noticed even while
    /// throttled, and PRIORITY, so urgent data (telnet's Synch) is noticed.
    pub const BASE_INTEREST: Interest = Interest::READABLE.add(Interest::PRIORITY);

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The server is stopping: read no more requests, answer what was read,
    /// then linger until the peer closes.
    pub fn stop(&mut self) {
        self.session.stop();
    }

    /// Records readiness reported by the poll. `drain` is a peer close,
    /// reset, socket error or urgent data: see [`Readiness::UntilWouldBlock`].
    pub fn mark_ready(&mut self, readable: bool, drain: bool) {
        if drain {
            self.readiness = Readiness::UntilWouldBlock;
        } else if readable && self.readiness == Readiness::Drained {
            self.readiness = Readiness::Readable;
        }
    }

    /// Output accepted from requests but not yet taken by the socket, and
    /// the bytes an unfinished answer holds to write the rest: what the
    /// connection adds to the total `--max-output-memory` bounds. (Each
    /// changes only in the calls after which the loop reads it again.)
    pub fn pending_output(&self) -> usize {
        self.session.output().pending() + self.session.held_answer_bytes()
    }

    /// The interest this state needs: WRITABLE only while output that may be
    /// sent is pending, so a connection that keeps up never wakes the loop
    /// for writability (held output is sent by the commit, not the poll).
    pub fn wanted_interest(&self) -> Interest {
        if self.session.output().sendable().is_empty() {
            Self::BASE_INTEREST
        } else {
            Self::BASE_INTEREST.add(Interest::WRITABLE)
        }
    }

    /// Records that the poll now has `interest`; returns whether it changed.
    pub fn set_registered(&mut self, interest: Interest) -> bool {
        std::mem::replace(&mut self.registered, interest) != interest
    }

    /// Does one bounded slice of work: write pending output, let the session
    /// go on with what it has left, read once into `scratch` and hand the
    /// session what came, write again.
    ///
    /// The bounds on a call are one read (`scratch.len()` bytes of new
    /// requests, besides held-back ones) and the session's slice of answer
    /// bytes, so a peer with a deep pipeline or a huge `get` cannot hold up
    /// the other ready connections for long.
    pub fn service(&mut self, scratch: &mut [u8], engine: &mut Engine, limits: &Limits) -> Next {
        if self.flush(engine).is_err() {
            return Next::Close;
        }
        self.session.begin(engine, limits);
        if self.readiness != Readiness::Drained && self.session.wants_input(limits) {
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.readiness = Readiness::Drained;
                    self.session.end_of_input();
                }
                Ok(n) => {
                    engine.count(Event::BytesIn(n));
                    // Under edge-triggered epoll a read shorter than the
                    // buffer means the socket's receive queue was emptied: new
                    // bytes will raise a fresh edge. Treating it as drained
                    // saves the read that would only say WouldBlock and the
                    // extra loop turn it takes. Measured with strace -c on a
                    // client that pauses between requests: 3 syscalls per
                    // request (epoll_wait, recvfrom, sendto) instead of 5.
                    // The exceptions are in `Readiness::UntilWouldBlock`.
                    if n < scratch.len() && self.readiness == Readiness::Readable {
                        self.readiness = Readiness::Drained;
                    }
                    self.session.receive(&scratch[..n], engine, limits);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.readiness = Readiness::Drained,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("read failed: {e}");
                    return Next::Close;
                }
            }
        }
        if self.flush(engine).is_err() {
            return Next::Close;
        }
        if matches!(self.session.phase(), Phase::Stopping | Phase::Lingering { .. }) && self.session.all_sent() {
            return self.linger(scratch);
        }
        self.next_step(limits)
    }

    /// The end of a connection when the server stops: closing a socket with
    /// unread requests in it makes the kernel send a reset, which can
    /// destroy the last answers before the peer reads them. So our side is
    /// shut down for writing (the peer reads every answer, then the end of
    /// stream) and what the peer still sends is read and dropped until it
    /// closes too, or the server's grace runs out (Apache's lingering close).
    fn linger(&mut self, scratch: &mut [u8]) -> Next {
        // Reads per turn while lingering, so a peer that keeps sending cannot
        // hold the loop (its requests are dropped, not answered).
        const LINGER_READS_PER_TURN: usize = 16;
        if self.session.phase() == Phase::Stopping {
            if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
                return Next::Close;
            }
            self.session.linger();
        }
        for _ in 0..LINGER_READS_PER_TURN {
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.session.end_of_input();
                    return Next::Close;
                }
                Ok(_) => self.session.dropped_input(),
                // A peer that sent nothing more has nothing in flight to
                // provoke a reset: closing now loses nothing, and an idle
                // connection does not hold the stop up.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if self.session.phase() == (Phase::Lingering { dropped: false }) {
                        return Next::Close;
                    }
                    self.readiness = Readiness::Drained;
                    return Next::Wait;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
        Next::Again
    }

    /// Whether some output waits for the turn's commit.
    pub fn holds_output(&self) -> bool {
        self.session.output().is_holding()
    }

    /// After the turn's commit: the session releases its held output (its
    /// put answers turned into errors if the commit failed), and it is sent.
    pub fn settle_held(&mut self, commit: Result<(), &EngineError>, limits: &Limits, engine: &mut Engine) -> Next {
        if self.holds_output() {
            self.session.settle(commit);
            if self.flush(engine).is_err() {
                return Next::Close;
            }
        }
        self.next_step(limits)
    }

    /// Whether the peer made progress since the last call.
    pub fn take_active(&mut self) -> bool {
        self.session.take_active()
    }

    /// What the loop should do next, from the state alone.
    fn next_step(&self, limits: &Limits) -> Next {
        let session = &self.session;
        let phase = session.phase();
        match phase {
            Phase::Closing => Next::Close,
            // Back to `service`, which lingers.
            Phase::Stopping | Phase::Lingering { .. } if session.all_sent() => Next::Again,
            _ if session.output().pending() < limits.max_pending_output
                && (session.has_backlog() || (self.readiness != Readiness::Drained && phase == Phase::Reading)) =>
            {
                match session.waits_for_shared_room(limits) {
                    true => Next::WaitForRoom,
                    false => Next::Again,
                }
            }
            // Output over the limit: WRITABLE brings us back when it drains.
            _ => Next::Wait,
        }
    }

    /// Writes the output the session may send until done or the socket is
    /// full.
    fn flush(&mut self, engine: &mut Engine) -> io::Result<()> {
        loop {
            let rest = self.session.output().sendable();
            if rest.is_empty() {
                break;
            }
            match self.stream.write(rest) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    // A short write means the send buffer is full; the poll
                    // reports WRITABLE when it has room again.
                    let short = n < rest.len();
                    self.session.output_mut().sent(n);
                    engine.count(Event::BytesOut(n));
                    if short {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("write failed: {e}");
                    return Err(e);
                }
            }
        }
        self.session.flushed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineError;
    use crate::journal::AppendError;
    use crate::store::Store;
    use crate::test_support::TempDir;
    use std::sync::Arc;

    const LIMITS: Limits = Limits {
        max_line_bytes: 1024,
        max_pending_output: 1 << 20,
    };

    /// A client socket and the server's Connection for it, over loopback.
    fn connected_pair() -> (std::net::TcpStream, Connection) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let peer = accepted.peer_addr().unwrap();
        (
            client,
            Connection::new(
                TcpStream::from_std(accepted),
                peer,
                Protocol::Course,
                &LIMITS,
                Instant::now(),
            ),
        )
    }

    #[test]
    fn one_read_per_service_call() {
        // A real socket pair on loopback with ~98 KB of puts queued and a
        // 16 KiB read buffer: every service call answers at most one read's
        // worth of lines, instead of serving the socket until it runs dry.
        let (mut client, mut conn) = connected_pair();
        const LINE: usize = "put k 1 00000\n".len();
        const PUTS: usize = 7000;
        let puts: String = (0..PUTS).map(|i| format!("put k 1 {i:05}\n")).collect();
        client.write_all(puts.as_bytes()).unwrap();

        let mut store = Engine::in_memory(Store::new());
        let limits = LIMITS;
        let mut scratch = vec![0u8; 16 * 1024];
        let per_read = scratch.len() / LINE;
        wait_for_input(&mut conn, scratch.len());
        conn.mark_ready(true, false);
        assert_eq!(conn.service(&mut scratch, &mut store, &limits), Next::Again);
        assert_eq!(store.store_mut().point_count(), per_read);
        for _ in 0..10_000 {
            if store.store_mut().point_count() == PUTS {
                break;
            }
            let before = store.store_mut().point_count();
            if conn.service(&mut scratch, &mut store, &limits) == Next::Wait {
                // Drained for now: stand in for the poll's next edge.
                std::thread::sleep(std::time::Duration::from_millis(1));
                conn.mark_ready(true, false);
            }
            assert!(
                store.store_mut().point_count() - before <= per_read + 1,
                "more than one read in one call"
            );
        }
        assert_eq!(store.store_mut().point_count(), PUTS);
        let mut answers = vec![0u8; PUTS * OK_LEN];
        client.read_exact(&mut answers).unwrap();
        assert!(answers.chunks(OK_LEN).all(|a| a == b"ok\n\n"));
    }

    const OK_LEN: usize = 4;

    /// Waits until the connection's socket holds at least `bytes` unread
    /// bytes (loopback delivers a write at once; this is the deadline).
    fn wait_for_input(conn: &mut Connection, bytes: usize) {
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        let mut buf = vec![0u8; bytes];
        while conn.stream_mut().peek(&mut buf).unwrap_or(0) < bytes {
            assert!(Instant::now() < deadline, "{bytes} bytes never arrived");
            std::thread::yield_now();
        }
    }

    /// Reads `len` bytes the server sent, then checks that it sent nothing
    /// more (on loopback a write is in the peer's queue when it returns).
    fn received(client: &mut std::net::TcpStream, len: usize) -> String {
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut got = vec![0u8; len];
        client.read_exact(&mut got).unwrap();
        client.set_nonblocking(true).unwrap();
        let more = client.read(&mut [0u8; 1]);
        assert!(
            matches!(&more, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "more was sent: {more:?}"
        );
        client.set_nonblocking(false).unwrap();
        String::from_utf8(got).unwrap()
    }

    #[test]
    fn answers_after_a_logged_put_wait_for_the_commit_and_a_failed_commit_turns_oks_into_errors() {
        let limits = LIMITS;
        let mut scratch = vec![0u8; 64 * 1024];
        let disk_full = EngineError::NotStored(AppendError::Write(Arc::new(std::io::Error::other("disk full"))));
        for commit in [Ok(()), Err(&disk_full)] {
            let (mut client, mut conn) = connected_pair();
            let dir = TempDir::new("held-answers");
            let mut db = Engine::durable_in(&dir.0);
            let requests = b"get a\nput a 1 1\nbad\nget a\nput b 2 2\n";
            client.write_all(requests).unwrap();
            wait_for_input(&mut conn, requests.len());
            conn.mark_ready(true, false);
            conn.service(&mut scratch, &mut db, &limits);
            assert!(conn.holds_output());
            assert_eq!(db.unlogged(), 2);
            // Only what precedes the first logged put is sent before the commit.
            assert_eq!(received(&mut client, 4), "ok\n\n");
            // The log takes the batch; a failure is stood in for.
            assert!(db.commit().is_ok());
            conn.settle_held(commit, &limits, &mut db);
            let put = match commit {
                Ok(()) => "ok\n\n",
                Err(_) => "error\nnot stored: cannot write the log: disk full\n\n",
            };
            let want = format!("{put}error\nwrong command\n\nok\na 1.0 1\n\n{put}");
            assert_eq!(received(&mut client, want.len()), want);
            assert!(!conn.holds_output());
        }
    }

    #[test]
    fn a_huge_answer_is_written_one_slice_per_service_call() {
        let (mut client, mut conn) = connected_pair();
        let mut store = Engine::in_memory(Store::new());
        for t in 0..200_000 {
            store.store_mut().put("big", t, 0.5);
        }
        // The output limit is far above the slice, so only the slice stops it.
        let limits = Limits {
            max_line_bytes: 1024,
            max_pending_output: 64 << 20,
        };
        let mut scratch = vec![0u8; 64 * 1024];
        client.write_all(b"get big\nget none\n").unwrap();
        wait_for_input(&mut conn, b"get big\nget none\n".len());
        conn.mark_ready(true, false);

        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            client.read_to_end(&mut all).unwrap();
            all
        });
        // The answer is about 3.3 MB: in slices of 256 KiB it takes more than
        // ten calls, each asking to be called again at once.
        let mut calls = 0;
        loop {
            let next = conn.service(&mut scratch, &mut store, &limits);
            calls += 1;
            if !conn.session.has_backlog() {
                break;
            }
            assert_eq!(next, Next::Again, "more of the answer is ready at once");
            assert!(calls < 10_000, "answer never finished");
        }
        assert!(calls > 10, "{calls} service calls for a 3.3 MB answer");
        while conn.pending_output() > 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
            assert_ne!(conn.service(&mut scratch, &mut store, &limits), Next::Close);
        }
        drop(conn);
        let all = String::from_utf8(reader.join().unwrap()).unwrap();
        let mut want = String::from("ok\n");
        for t in 0..200_000 {
            want.push_str(&format!("big 0.5 {t}\n"));
        }
        want.push_str("\nok\n\n");
        assert!(all == want, "answers differ");
    }
}
