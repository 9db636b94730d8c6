//! One client connection: its socket, unprocessed input, pending output, and
//! the interest it needs from the poll, derived from that state.
//!
//! The event loop reads every connection into one shared scratch buffer and
//! requests are answered straight from it; a connection keeps bytes of its own
//! only for what is left over (an incomplete line, or lines held back while
//! its output is over the limit) and for output the socket has not taken yet.
//! Idle connections therefore hold no buffers at all.
//!
//! Output is bounded, answer by answer and line by line: a `get` answer is
//! written only while the connection's unsent output is under
//! `max_pending_output`, and stops after a whole line to go on later (see
//! [`handler::Resume`]), so a peer that never reads costs the server at most
//! that much, whatever it asks for.

use super::handler::{self, Resume};
use super::Limits;
use crate::db::Db;
use crate::protocol::response;
use crate::protocol::{Framed, LineFramer, RequestError};
use crate::stats::Counters;
use mio::net::TcpStream;
use mio::Interest;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

/// Buffers are kept for reuse once empty, shrunk to this capacity when a
/// big `get` answer or a long line left them larger, so that an idle
/// connection pins no more. 4 KiB holds a typical pipelined batch of
/// answers or requests. (Shrunk, not freed: a buffer that grew from empty
/// by doubling from its first few bytes passes 4 KiB at odd sizes, 4,352
/// for a 3.2 KB answer, and freeing it cost every `get` of 100 points nine
/// reallocations, 1,400 instructions.)
const RETAIN_BUFFER_BYTES: usize = 4096;

/// Answer bytes one connection may produce in one turn. 256 KiB is about
/// 10,000 point lines, a fraction of a millisecond of formatting, so a `get`
/// of millions of points is written in slices with every other ready
/// connection served between them.
const ANSWER_SLICE_BYTES: usize = 256 * 1024;

/// What the event loop should do with a connection after servicing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do until the poll reports readiness.
    Wait,
    /// More work is ready now (unread input, held-back lines, or the rest of
    /// an answer): service it again next turn, after the other connections.
    Again,
    /// The peer is gone or an I/O error happened: drop the connection.
    Close,
}

pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// When the peer last sent a whole request or took answer bytes
    /// (`--idle-timeout`); kept by the event loop.
    pub(super) last_active: Instant,
    /// Progress since the loop last looked (see `last_active`).
    active: bool,
    framer: LineFramer,
    /// Input not yet answered: an incomplete line, or complete lines held back
    /// while output was over the limit or an answer was being written.
    input: Vec<u8>,
    /// Whether `input` may hold complete lines (we stopped before the framer
    /// said Incomplete).
    input_held: bool,
    /// A `get` answer that ran out of room, to go on with before anything else.
    answering: Option<Resume>,
    output: Vec<u8>,
    /// Bytes of `output` already written to the socket.
    written: usize,
    /// Output from here on answers (or follows answers to) puts of this
    /// turn that are not in the log yet: it is not sent before the turn's
    /// commit (see [`Connection::settle_held`]).
    held_from: Option<usize>,
    /// Where in `output` the `ok`s of those puts are, to be turned into
    /// errors if the commit fails.
    held_acks: Vec<usize>,
    /// Answer bytes this turn may still produce (reset every service call).
    slice_left: usize,
    /// The socket may have unread bytes (readiness not yet drained).
    readable: bool,
    /// A short read does not prove the socket drained: after a hang-up or an
    /// error (whose edge is spent, with the end of stream behind the data)
    /// and after urgent data (a read stops at the urgent mark). Read on until
    /// WouldBlock, end of stream or an error.
    read_until_would_block: bool,
    /// The peer shut down its sending side: answer what was read, then close.
    read_closed: bool,
    /// The server is stopping: no more requests are read; once what was read
    /// is answered and sent, the connection lingers (see [`Connection::linger`]).
    stopping: bool,
    /// Our side is shut down for writing (lingering).
    fin_sent: bool,
    /// Requests arrived after the stop and were dropped: the peer is still
    /// sending, so wait for its end of stream before closing.
    dropped_while_lingering: bool,
    /// The interest currently registered with the poll.
    registered: Interest,
    /// In the event loop's queue of connections to service.
    pub(super) queued: bool,
}

impl Connection {
    /// A connection registered (by the caller) for [`Connection::BASE_INTEREST`].
    pub fn new(stream: TcpStream, peer: SocketAddr, max_line: usize, now: Instant) -> Self {
        Connection {
            stream,
            peer,
            last_active: now,
            active: false,
            framer: LineFramer::new(max_line),
            input: Vec::new(),
            input_held: false,
            answering: None,
            output: Vec::new(),
            written: 0,
            held_from: None,
            held_acks: Vec::new(),
            slice_left: 0,
            readable: false,
            read_until_would_block: false,
            read_closed: false,
            stopping: false,
            fin_sent: false,
            dropped_while_lingering: false,
            registered: Self::BASE_INTEREST,
            queued: false,
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
    pub fn stop_reading(&mut self) {
        self.stopping = true;
    }

    /// Records readiness reported by the poll. `drain` is a peer close,
    /// reset, socket error or urgent data: see `read_until_would_block`.
    pub fn mark_ready(&mut self, readable: bool, drain: bool) {
        self.readable |= readable || drain;
        self.read_until_would_block |= drain;
    }

    /// Output accepted from requests but not yet taken by the socket.
    pub fn pending_output(&self) -> usize {
        self.output.len() - self.written
    }

    /// How many answer bytes may be added now: under the output limit and
    /// within this turn's slice.
    fn room(&self, limits: &Limits) -> usize {
        limits
            .max_pending_output
            .saturating_sub(self.pending_output())
            .min(self.slice_left)
    }

    /// Where the output that may be sent now ends.
    fn sendable_end(&self) -> usize {
        self.held_from.unwrap_or(self.output.len())
    }

    /// The interest this state needs: WRITABLE only while output that may be
    /// sent is pending, so a connection that keeps up never wakes the loop
    /// for writability (held output is sent by the commit, not the poll).
    pub fn wanted_interest(&self) -> Interest {
        if self.written < self.sendable_end() {
            Self::BASE_INTEREST.add(Interest::WRITABLE)
        } else {
            Self::BASE_INTEREST
        }
    }

    /// Records that the poll now has `interest`; returns whether it changed.
    pub fn set_registered(&mut self, interest: Interest) -> bool {
        std::mem::replace(&mut self.registered, interest) != interest
    }

    /// Does one bounded slice of work: write pending output, go on with an
    /// unfinished answer, answer held-back input, read once into `scratch`
    /// and answer what came, write again.
    ///
    /// The bounds on a turn are one read (`scratch.len()` bytes of new
    /// requests, besides held-back ones) and [`ANSWER_SLICE_BYTES`] of answers,
    /// so a peer with a deep pipeline or a huge `get` cannot hold up the
    /// other ready connections for long.
    pub fn service(&mut self, scratch: &mut [u8], db: &mut Db, limits: &Limits) -> Next {
        debug_assert!(self.held_from.is_none(), "held output outlived its turn");
        if self.flush(&mut db.counters).is_err() {
            return Next::Close;
        }
        self.slice_left = ANSWER_SLICE_BYTES;
        if self.answering.is_some() && self.room(limits) > 0 {
            self.go_on_answering(db, limits);
        }
        if self.answering.is_none() && self.input_held && self.room(limits) > 0 {
            self.answer_kept_input(db, limits);
        }
        let may_read = !self.read_closed && !self.stopping && !self.input_held && self.answering.is_none();
        if self.readable && may_read && self.room(limits) > 0 {
            match self.stream.read(scratch) {
                Ok(0) => {
                    // A line without its `\n` at end of stream is not a
                    // request; it is dropped with the connection.
                    self.read_closed = true;
                    self.readable = false;
                }
                Ok(n) => {
                    db.counters.bytes_in += n as u64;
                    // Under edge-triggered epoll a read shorter than the
                    // buffer means the socket's receive queue was emptied: new
                    // bytes will raise a fresh edge. Treating it as drained
                    // saves the read that would only say WouldBlock and the
                    // extra loop turn it takes. Measured with strace -c on a
                    // client that pauses between requests: 3 syscalls per
                    // request (epoll_wait, recvfrom, sendto) instead of 5.
                    // The exceptions are in `read_until_would_block`.
                    self.readable = n == scratch.len() || self.read_until_would_block;
                    self.take_input(&scratch[..n], db, limits);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.readable = false;
                    self.read_until_would_block = false;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("read failed: {e}");
                    return Next::Close;
                }
            }
        }
        if self.flush(&mut db.counters).is_err() {
            return Next::Close;
        }
        if self.input.is_empty() {
            self.input.shrink_to(RETAIN_BUFFER_BYTES);
        }
        if self.stopping && self.all_sent() && !self.read_closed {
            return self.linger(scratch);
        }
        self.next_step(limits)
    }

    /// Nothing left to answer or send.
    fn all_sent(&self) -> bool {
        !self.input_held && self.answering.is_none() && self.pending_output() == 0
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
        if !self.fin_sent {
            if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
                return Next::Close;
            }
            self.fin_sent = true;
        }
        for _ in 0..LINGER_READS_PER_TURN {
            match self.stream.read(scratch) {
                Ok(0) => return Next::Close,
                Ok(_) => self.dropped_while_lingering = true,
                // A peer that sent nothing more has nothing in flight to
                // provoke a reset: closing now loses nothing, and an idle
                // connection does not hold the stop up.
                Err(e) if e.kind() == ErrorKind::WouldBlock && !self.dropped_while_lingering => return Next::Close,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.readable = false;
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
        self.held_from.is_some()
    }

    /// After the turn's commit: releases the held output, its `ok`s turned
    /// into `error\n<reason>` answers if the commit failed, and sends it.
    pub fn settle_held(&mut self, commit: Result<(), &str>, limits: &Limits, counters: &mut Counters) -> Next {
        let Some(from) = self.held_from.take() else {
            return self.next_step(limits);
        };
        if let Err(reason) = commit {
            let held = self.output.split_off(from);
            let mut copied = 0;
            for &ack in &self.held_acks {
                let at = ack - from;
                debug_assert_eq!(&held[at..at + response::OK_EMPTY.len()], response::OK_EMPTY);
                self.output.extend_from_slice(&held[copied..at]);
                response::write_error(&mut self.output, reason);
                copied = at + response::OK_EMPTY.len();
            }
            self.output.extend_from_slice(&held[copied..]);
        }
        self.held_acks.clear();
        if self.held_acks.capacity() > RETAIN_BUFFER_BYTES / std::mem::size_of::<usize>() {
            self.held_acks = Vec::new();
        }
        if self.flush(counters).is_err() {
            return Next::Close;
        }
        self.next_step(limits)
    }

    /// Whether the peer made progress since the last call.
    pub fn take_active(&mut self) -> bool {
        std::mem::take(&mut self.active)
    }

    /// What the loop should do next, from the state alone.
    fn next_step(&self, limits: &Limits) -> Next {
        let more_to_answer = self.input_held || self.answering.is_some();
        if self.read_closed && self.all_sent() {
            Next::Close
        } else if self.stopping && self.all_sent() {
            // Back to `service`, which lingers.
            Next::Again
        } else if self.pending_output() < limits.max_pending_output
            && (more_to_answer || (self.readable && !self.read_closed))
        {
            Next::Again
        } else {
            // Output over the limit: WRITABLE brings us back when it drains.
            Next::Wait
        }
    }

    /// Answers freshly read bytes, keeping whatever is left over.
    fn take_input(&mut self, data: &[u8], db: &mut Db, limits: &Limits) {
        if self.input.is_empty() {
            let used = self.answer(data, db, limits);
            self.input.extend_from_slice(&data[used..]);
        } else {
            // An incomplete line is waiting: the new bytes continue it.
            self.input.extend_from_slice(data);
            self.answer_kept_input(db, limits);
        }
    }

    /// Answers what `input` holds and keeps only what is left over.
    fn answer_kept_input(&mut self, db: &mut Db, limits: &Limits) {
        let mut input = std::mem::take(&mut self.input);
        let used = self.answer(&input, db, limits);
        input.drain(..used);
        self.input = input;
    }

    /// Answers complete lines at the front of `data` until it runs out, the
    /// room for output runs out (checked between requests), or an answer is
    /// cut into slices. Returns how many bytes were used up.
    fn answer(&mut self, data: &[u8], db: &mut Db, limits: &Limits) -> usize {
        self.compact_output();
        let mut pos = 0;
        loop {
            let room = self.room(limits);
            if room == 0 || self.answering.is_some() {
                self.input_held = pos < data.len();
                return pos;
            }
            let (framed, used) = self.framer.next(&data[pos..]);
            pos += used;
            let before = self.output.len();
            if !matches!(framed, Framed::Incomplete) {
                self.active = true;
            }
            match framed {
                Framed::Line(line) => {
                    let unlogged = db.unlogged();
                    match handler::answer_line(line, db, &mut self.output, room) {
                        Ok(resume) => self.answering = resume,
                        Err(cause) => self.count_bad_request(cause, db),
                    }
                    if db.unlogged() > unlogged {
                        self.held_from.get_or_insert(before);
                        self.held_acks.push(before);
                    }
                }
                Framed::TooLong => {
                    self.count_bad_request(RequestError::LineTooLong, db);
                    handler::reject(&mut self.output);
                }
                Framed::Incomplete => {
                    self.input_held = false;
                    return pos;
                }
            }
            self.slice_left = self.slice_left.saturating_sub(self.output.len() - before);
        }
    }

    fn count_bad_request(&self, cause: RequestError, db: &mut Db) {
        db.counters.errors[cause.index()] += 1;
        db.warn_bad_request
            .warn(format_args!("bad request from {}: {cause}", self.peer));
    }

    /// Writes more of an answer that ran out of room.
    fn go_on_answering(&mut self, db: &mut Db, limits: &Limits) {
        self.compact_output();
        let room = self.room(limits);
        if let Some(from) = self.answering.take() {
            let before = self.output.len();
            self.answering = handler::resume(from, db, &mut self.output, room);
            self.slice_left = self.slice_left.saturating_sub(self.output.len() - before);
        }
    }

    /// Moves unsent output to the front before more is appended. Output is
    /// only appended while under the limit, so this moves at most that much,
    /// once per turn.
    fn compact_output(&mut self) {
        let written = std::mem::take(&mut self.written);
        if written > 0 {
            self.output.drain(..written);
            if let Some(from) = &mut self.held_from {
                *from -= written;
            }
            self.held_acks.iter_mut().for_each(|ack| *ack -= written);
        }
    }

    /// Writes pending output that may be sent until done or the socket is full.
    fn flush(&mut self, counters: &mut Counters) -> io::Result<()> {
        let end = self.sendable_end();
        while self.written < end {
            let rest = &self.output[self.written..end];
            match self.stream.write(rest) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.written += n;
                    self.active = true;
                    counters.bytes_out += n as u64;
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
            self.output.clear();
            self.output.shrink_to(RETAIN_BUFFER_BYTES);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// A client socket and the server's Connection for it, over loopback.
    fn connected_pair() -> (std::net::TcpStream, Connection) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let peer = accepted.peer_addr().unwrap();
        (
            client,
            Connection::new(TcpStream::from_std(accepted), peer, 1024, Instant::now()),
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
        std::thread::sleep(std::time::Duration::from_millis(100));

        let mut store = Db::in_memory(Store::new());
        let limits = Limits {
            max_line_bytes: 1024,
            max_pending_output: 1 << 20,
        };
        let mut scratch = vec![0u8; 16 * 1024];
        let per_read = scratch.len() / LINE;
        conn.mark_ready(true, false);
        assert_eq!(conn.service(&mut scratch, &mut store, &limits), Next::Again);
        assert_eq!(store.store.point_count(), per_read);
        for _ in 0..10_000 {
            if store.store.point_count() == PUTS {
                break;
            }
            let before = store.store.point_count();
            if conn.service(&mut scratch, &mut store, &limits) == Next::Wait {
                // Drained for now: stand in for the poll's next edge.
                std::thread::sleep(std::time::Duration::from_millis(1));
                conn.mark_ready(true, false);
            }
            assert!(
                store.store.point_count() - before <= per_read + 1,
                "more than one read in one call"
            );
        }
        assert_eq!(store.store.point_count(), PUTS);
        let mut answers = vec![0u8; PUTS * OK_LEN];
        client.read_exact(&mut answers).unwrap();
        assert!(answers.chunks(OK_LEN).all(|a| a == b"ok\n\n"));
    }

    const OK_LEN: usize = 4;

    /// Reads whatever the client has been sent within a short wait.
    fn received(client: &mut std::net::TcpStream) -> String {
        client
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    #[test]
    fn answers_after_a_logged_put_wait_for_the_commit_and_a_failed_commit_turns_oks_into_errors() {
        let limits = Limits {
            max_line_bytes: 1024,
            max_pending_output: 1 << 20,
        };
        let mut scratch = vec![0u8; 64 * 1024];
        for commit in [Ok(()), Err("not stored: disk full")] {
            let (mut client, mut conn) = connected_pair();
            let mut db = Db::logged(Store::new());
            client.write_all(b"get a\nput a 1 1\nbad\nget a\nput b 2 2\n").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            conn.mark_ready(true, false);
            conn.service(&mut scratch, &mut db, &limits);
            assert!(conn.holds_output());
            assert_eq!(db.unlogged(), 2);
            // Only what precedes the first logged put is sent before the commit.
            assert_eq!(received(&mut client), "ok\n\n");
            conn.settle_held(commit, &limits, &mut db.counters);
            let put = match commit {
                Ok(()) => "ok\n\n".to_owned(),
                Err(reason) => format!("error\n{reason}\n\n"),
            };
            assert_eq!(
                received(&mut client),
                format!("{put}error\nwrong command\n\nok\na 1.0 1\n\n{put}")
            );
            assert!(!conn.holds_output());
        }
    }

    #[test]
    fn a_huge_answer_is_written_one_slice_per_service_call() {
        let (mut client, mut conn) = connected_pair();
        let mut store = Db::in_memory(Store::new());
        for t in 0..200_000 {
            store.store.put("big", t, 0.5);
        }
        // The output limit is far above the slice, so only the slice stops it.
        let limits = Limits {
            max_line_bytes: 1024,
            max_pending_output: 64 << 20,
        };
        let mut scratch = vec![0u8; 64 * 1024];
        client.write_all(b"get big\nget none\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
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
            if conn.answering.is_none() && !conn.input_held {
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
