//! One client connection: its socket, unprocessed input, pending output, and
//! the interest it needs from the poll, derived from that state.
//!
//! The event loop reads every connection into one shared scratch buffer and
//! requests are answered straight from it; a connection keeps bytes of its own
//! only for what is left over (an incomplete line, or lines held back while
//! its output is over the limit) and for output the socket has not taken yet.
//! Idle connections therefore hold no buffers at all.

use super::handler;
use super::Limits;
use crate::protocol::{Framed, LineFramer, RequestError};
use crate::store::Store;
use mio::net::TcpStream;
use mio::Interest;
use std::io::{self, ErrorKind, Read, Write};

/// Buffers up to this capacity are kept for reuse once empty; larger ones
/// (left by a big `get` answer or a long line) are freed so that an idle
/// connection does not pin them. 4 KiB holds a typical pipelined batch of
/// answers or requests.
const RETAIN_BUFFER_BYTES: usize = 4096;

/// What the event loop should do with a connection after servicing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do until the poll reports readiness.
    Wait,
    /// More work is ready now (unread input or held-back lines): service it
    /// again next turn, after the other connections had theirs.
    Again,
    /// The peer is gone or an I/O error happened: drop the connection.
    Close,
}

pub struct Connection {
    stream: TcpStream,
    framer: LineFramer,
    /// Input not yet answered: an incomplete line, or complete lines held back
    /// while output was over the limit.
    input: Vec<u8>,
    /// Whether `input` may hold complete lines (we stopped before the framer
    /// said Incomplete).
    input_held: bool,
    output: Vec<u8>,
    /// Bytes of `output` already written to the socket.
    written: usize,
    /// The socket may have unread bytes (readiness not yet drained).
    readable: bool,
    /// The poll reported a hang-up or an error: a short read no longer
    /// proves the socket drained, so read on until end of stream or error.
    hangup_seen: bool,
    /// The peer shut down its sending side: answer what was read, then close.
    read_closed: bool,
    /// The interest currently registered with the poll.
    registered: Interest,
    /// In the event loop's queue of connections to service.
    pub(super) queued: bool,
}

impl Connection {
    /// A connection registered (by the caller) for `READABLE`.
    pub fn new(stream: TcpStream, max_line: usize) -> Self {
        Connection {
            stream,
            framer: LineFramer::new(max_line),
            input: Vec::new(),
            input_held: false,
            output: Vec::new(),
            written: 0,
            readable: false,
            hangup_seen: false,
            read_closed: false,
            registered: Interest::READABLE,
            queued: false,
        }
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Records readiness reported by the poll. `hangup` is a peer close,
    /// reset or socket error, all of which a read will report.
    pub fn mark_ready(&mut self, readable: bool, hangup: bool) {
        self.readable |= readable || hangup;
        self.hangup_seen |= hangup;
    }

    /// Output accepted from requests but not yet taken by the socket.
    pub fn pending_output(&self) -> usize {
        self.output.len() - self.written
    }

    fn throttled(&self, limits: &Limits) -> bool {
        self.pending_output() >= limits.max_pending_output
    }

    /// The interest this state needs: always READABLE (so a reset or close is
    /// noticed even while throttled), WRITABLE only while output is pending,
    /// so a connection that keeps up never wakes the loop for writability.
    pub fn wanted_interest(&self) -> Interest {
        if self.pending_output() > 0 {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Records that the poll now has `interest`; returns whether it changed.
    pub fn set_registered(&mut self, interest: Interest) -> bool {
        std::mem::replace(&mut self.registered, interest) != interest
    }

    /// Does one bounded slice of work: write pending output, answer held-back
    /// input, read once into `scratch` and answer what came, write again.
    ///
    /// One read per turn is the fairness bound: a peer with a deep pipeline
    /// gets at most `scratch.len()` bytes of requests answered before every
    /// other ready connection has had its turn.
    pub fn service(&mut self, scratch: &mut [u8], store: &mut Store, limits: &Limits) -> Next {
        if self.flush().is_err() {
            return Next::Close;
        }
        if self.input_held && !self.throttled(limits) {
            self.answer_kept_input(store, limits);
        }
        if self.readable && !self.read_closed && !self.input_held && !self.throttled(limits) {
            match self.stream.read(scratch) {
                Ok(0) => {
                    // A line without its `\n` at end of stream is not a
                    // request; it is dropped with the connection.
                    self.read_closed = true;
                    self.readable = false;
                }
                Ok(n) => {
                    // Under edge-triggered epoll a read shorter than the
                    // buffer means the socket's receive queue was emptied: new
                    // bytes will raise a fresh edge. Treating it as drained
                    // saves the read that would only say WouldBlock and the
                    // extra loop turn it takes. Measured with strace -c on a
                    // client that pauses between requests: 3 syscalls per
                    // request (epoll_wait, recvfrom, sendto) instead of 5.
                    // Not so once a hang-up was reported: its edge is spent,
                    // and only reading on finds the end of stream behind the
                    // data.
                    self.readable = n == scratch.len() || self.hangup_seen;
                    self.take_input(&scratch[..n], store, limits);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("read failed: {e}");
                    return Next::Close;
                }
            }
        }
        if self.flush().is_err() {
            return Next::Close;
        }
        if self.input.is_empty() && self.input.capacity() > RETAIN_BUFFER_BYTES {
            self.input = Vec::new();
        }
        let throttled = self.throttled(limits);
        if self.read_closed && !self.input_held && self.pending_output() == 0 {
            Next::Close
        } else if !throttled && (self.input_held || (self.readable && !self.read_closed)) {
            Next::Again
        } else {
            Next::Wait
        }
    }

    /// Answers freshly read bytes, keeping whatever is left over.
    fn take_input(&mut self, data: &[u8], store: &mut Store, limits: &Limits) {
        if self.input.is_empty() {
            let used = self.answer(data, store, limits);
            self.input.extend_from_slice(&data[used..]);
        } else {
            // An incomplete line is waiting: the new bytes continue it.
            self.input.extend_from_slice(data);
            self.answer_kept_input(store, limits);
        }
    }

    /// Answers what `input` holds and keeps only what is left over.
    fn answer_kept_input(&mut self, store: &mut Store, limits: &Limits) {
        let mut input = std::mem::take(&mut self.input);
        let used = self.answer(&input, store, limits);
        input.drain(..used);
        self.input = input;
    }

    /// Answers complete lines at the front of `data` until it runs out or the
    /// output passes the limit (checked between requests, so one large answer
    /// is never cut). Returns how many bytes were used up.
    fn answer(&mut self, data: &[u8], store: &mut Store, limits: &Limits) -> usize {
        if self.written > 0 {
            // Move unsent output to the front before appending; this is at
            // most the output limit, and happens once per turn.
            self.output.drain(..self.written);
            self.written = 0;
        }
        let mut pos = 0;
        loop {
            if self.throttled(limits) {
                self.input_held = pos < data.len();
                return pos;
            }
            let (framed, used) = self.framer.next(&data[pos..]);
            pos += used;
            match framed {
                Framed::Line(line) => {
                    if let Err(cause) = handler::answer_line(line, store, &mut self.output) {
                        log::debug!("rejected request: {cause}");
                    }
                }
                Framed::TooLong => {
                    log::debug!("rejected request: {}", RequestError::LineTooLong);
                    handler::reject(&mut self.output);
                }
                Framed::Incomplete => {
                    self.input_held = false;
                    return pos;
                }
            }
        }
    }

    /// Writes pending output until done or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        while self.written < self.output.len() {
            let rest = &self.output[self.written..];
            match self.stream.write(rest) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.written += n;
                    // A short write means the send buffer is full; the poll
                    // reports WRITABLE when it has room again.
                    if n < rest.len() {
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
        if self.written == self.output.len() {
            self.written = 0;
            if self.output.capacity() > RETAIN_BUFFER_BYTES {
                self.output = Vec::new();
            } else {
                self.output.clear();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_read_per_service_call() {
        // A real socket pair on loopback with ~98 KB of puts queued and a
        // 16 KiB read buffer: every service call answers at most one read's
        // worth of lines, instead of serving the socket until it runs dry.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let mut conn = Connection::new(TcpStream::from_std(accepted), 1024);
        const LINE: usize = "put k 1 00000\n".len();
        const PUTS: usize = 7000;
        let puts: String = (0..PUTS).map(|i| format!("put k 1 {i:05}\n")).collect();
        client.write_all(puts.as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));

        let mut store = Store::new();
        let limits = Limits {
            max_line_bytes: 1024,
            max_pending_output: 1 << 20,
        };
        let mut scratch = vec![0u8; 16 * 1024];
        let per_read = scratch.len() / LINE;
        conn.mark_ready(true, false);
        assert_eq!(conn.service(&mut scratch, &mut store, &limits), Next::Again);
        assert_eq!(store.point_count(), per_read);
        for _ in 0..10_000 {
            if store.point_count() == PUTS {
                break;
            }
            let before = store.point_count();
            if conn.service(&mut scratch, &mut store, &limits) == Next::Wait {
                // Drained for now: stand in for the poll's next edge.
                std::thread::sleep(std::time::Duration::from_millis(1));
                conn.mark_ready(true, false);
            }
            assert!(
                store.point_count() - before <= per_read + 1,
                "more than one read in one call"
            );
        }
        assert_eq!(store.point_count(), PUTS);
        let mut answers = vec![0u8; PUTS * OK_LEN];
        client.read_exact(&mut answers).unwrap();
        assert!(answers.chunks(OK_LEN).all(|a| a == b"ok\n\n"));
    }

    const OK_LEN: usize = 4;
}
