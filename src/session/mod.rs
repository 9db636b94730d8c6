//! Sessions: one per connection, one type per wire protocol, with no
//! socket in sight. A session takes the bytes a connection read, acts on
//! the [`Engine`], and leaves answer bytes in its [`Output`] for the
//! connection to send; where it is in its life is its [`Phase`].
//!
//! The event loop (`server`) drives every session through [`Session`]'s few
//! methods and knows nothing of lines or requests; a new protocol is one
//! more session type here and one more listener kind there, under the same
//! [`Limits`], idle timeout and connection cap.
//!
//! | module | job |
//! | --- | --- |
//! | `course` | the course protocol: request lines in, answers out, `put` answers held for the turn's commit |
//! | `course::answer` | one request line → engine effect + answer bytes; long `get` answers in slices |

mod course;

use crate::engine::{Engine, EngineError};
use std::net::SocketAddr;

pub use course::CourseSession;

/// Buffers are kept for reuse once empty, shrunk to this capacity when a
/// big `get` answer or a long line left them larger, so that an idle
/// connection pins no more. 4 KiB holds a typical pipelined batch of
/// answers or requests. (Shrunk, not freed: a buffer that grew from empty
/// by doubling from its first few bytes passes 4 KiB at odd sizes, 4,352
/// for a 3.2 KB answer, and freeing it cost every `get` of 100 points nine
/// reallocations, 1,400 instructions.)
const RETAIN_BUFFER_BYTES: usize = 4096;

/// Answer bytes one session may produce in one turn. 256 KiB is about
/// 10,000 point lines, a fraction of a millisecond of formatting, so a `get`
/// of millions of points is written in slices with every other ready
/// connection served between them.
const ANSWER_SLICE_BYTES: usize = 256 * 1024;

/// Per-connection bounds on memory and work, the same for every protocol.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest request line, without its `\n`.
    pub max_line_bytes: usize,
    /// Output above which a connection's requests are no longer read.
    pub max_pending_output: usize,
}

/// Where a session is in its life.
///
/// ```text
///            output full, with lines or an answer left
///   Reading ───────────────────────────────────────────▶ Throttled
///      │  ◀────────── output drained, all answered ─────────┘ │
///      │ peer's end of stream          server stops │          │ server stops
///      ▼                                            ▼          ▼
///   Draining                                        Stopping ◀─┘
///      │ all sent                                   │ all answered and sent
///      ▼                                            ▼
///   Closing ◀──────── peer's end of stream ──── Lingering { dropped }
/// ```
///
/// Only Reading reads; Throttled and Stopping answer what was read as the
/// output drains. A stop in Draining stays Draining: the peer has already
/// closed its side, so there is nothing to linger for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Requests are read and answered.
    Reading,
    /// Complete requests, or the rest of a long answer, wait for the output
    /// to drain below the limit: nothing more is read until they are done.
    Throttled,
    /// The peer shut down its sending side: what was read is answered and
    /// sent, then the connection closes.
    Draining,
    /// The server is stopping: nothing more is read, what was read is
    /// answered and sent, then the session lingers.
    Stopping,
    /// Stopping, all sent and our side shut down for writing: what the peer
    /// still sends is dropped until it closes. `dropped`: some was, so the
    /// peer is still sending and its end of stream is worth waiting for.
    Lingering { dropped: bool },
    /// Nothing left to do: the connection is dropped.
    Closing,
}

/// The protocols the server speaks; a listener is typed by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The course's line protocol: `put`, `get`, `stats`.
    Course,
}

/// A session of any protocol: static dispatch, no allocation per call.
pub enum Session {
    Course(CourseSession),
}

/// Calls the same method on whichever session this is.
macro_rules! dispatch {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            Session::Course($s) => $call,
        }
    };
}

impl Session {
    /// A session for a new connection from `peer` (named in logs).
    pub fn new(protocol: Protocol, peer: SocketAddr, limits: &Limits) -> Session {
        match protocol {
            Protocol::Course => Session::Course(CourseSession::new(peer, limits.max_line_bytes)),
        }
    }

    pub fn phase(&self) -> Phase {
        dispatch!(self, s => s.phase())
    }

    /// The start of one service call: a fresh budget of answer bytes, and
    /// whatever was left from the last call (held-back requests, the rest of
    /// an answer) answered as far as the room allows.
    pub fn begin(&mut self, engine: &mut Engine, limits: &Limits) {
        dispatch!(self, s => s.begin(engine, limits))
    }

    /// Whether the connection should read now: the session is Reading and
    /// has room for answers.
    pub fn wants_input(&self, limits: &Limits) -> bool {
        dispatch!(self, s => s.wants_input(limits))
    }

    /// Answers bytes just read, keeping what cannot be answered yet.
    pub fn receive(&mut self, data: &[u8], engine: &mut Engine, limits: &Limits) {
        dispatch!(self, s => s.receive(data, engine, limits))
    }

    /// The peer's end of stream.
    pub fn end_of_input(&mut self) {
        dispatch!(self, s => s.end_of_input())
    }

    /// The server is stopping.
    pub fn stop(&mut self) {
        dispatch!(self, s => s.stop())
    }

    /// Stopping and everything sent: from now on the peer's bytes are
    /// dropped ([`Session::dropped_input`]) until its end of stream.
    pub fn linger(&mut self) {
        dispatch!(self, s => s.linger())
    }

    /// Lingering: the peer sent more, which was dropped.
    pub fn dropped_input(&mut self) {
        dispatch!(self, s => s.dropped_input())
    }

    /// Whether requests or the rest of an answer wait to be answered.
    pub fn has_backlog(&self) -> bool {
        dispatch!(self, s => s.has_backlog())
    }

    /// Whether the session has answered everything and the socket has taken
    /// it all.
    pub fn all_sent(&self) -> bool {
        !self.has_backlog() && self.output().pending() == 0
    }

    /// After the connection wrote what it could: a draining session that
    /// has sent everything is done.
    pub fn flushed(&mut self) {
        dispatch!(self, s => s.flushed())
    }

    pub fn output(&self) -> &Output {
        dispatch!(self, s => s.output())
    }

    pub fn output_mut(&mut self) -> &mut Output {
        dispatch!(self, s => s.output_mut())
    }

    /// After the turn's commit: releases the output held for it, its put
    /// answers turned into errors if the commit failed.
    pub fn settle(&mut self, commit: Result<(), &EngineError>) {
        dispatch!(self, s => s.settle(commit))
    }

    /// Whether the peer sent a whole request or took answer bytes since the
    /// last call (for the idle timeout).
    pub fn take_active(&mut self) -> bool {
        dispatch!(self, s => s.take_active())
    }
}

/// A session's answer bytes, the part the socket has taken, and the part
/// held back until the turn's commit.
#[derive(Debug, Default)]
pub struct Output {
    buf: Vec<u8>,
    /// Bytes of `buf` already taken by the socket.
    written: usize,
    /// Output from here on answers (or follows answers to) puts of this
    /// turn that are not in the log yet: it is not sent before the commit.
    held_from: Option<usize>,
    /// Bytes were taken since the session last looked.
    taken: bool,
}

impl Output {
    /// Bytes accepted from requests but not yet taken by the socket.
    #[inline]
    pub fn pending(&self) -> usize {
        self.buf.len() - self.written
    }

    /// What may be sent now.
    #[inline]
    pub fn sendable(&self) -> &[u8] {
        &self.buf[self.written..self.held_from.unwrap_or(self.buf.len())]
    }

    /// Records that the socket took `n` bytes of [`Output::sendable`].
    #[inline]
    pub fn sent(&mut self, n: usize) {
        self.written += n;
        self.taken |= n > 0;
    }

    /// After a flush: an output sent in full is emptied and its buffer
    /// shrunk, so a quiet connection pins no more than a small one.
    #[inline]
    pub fn tidy(&mut self) {
        if self.written == self.buf.len() {
            self.written = 0;
            self.buf.clear();
            self.buf.shrink_to(RETAIN_BUFFER_BYTES);
        }
    }

    /// Whether some output waits for the turn's commit.
    #[inline]
    pub fn is_holding(&self) -> bool {
        self.held_from.is_some()
    }

    /// Holds everything from `at` on until the turn's commit.
    #[inline]
    fn hold_from(&mut self, at: usize) {
        self.held_from.get_or_insert(at);
    }

    /// Stops holding; returns where the held output began.
    fn release(&mut self) -> Option<usize> {
        self.held_from.take()
    }

    /// Moves unsent output to the front before more is appended, and
    /// returns by how much it moved. Output is only appended while under
    /// the limit, so this moves at most that much, once per turn.
    fn compact(&mut self) -> usize {
        let written = std::mem::take(&mut self.written);
        if written > 0 {
            self.buf.drain(..written);
            if let Some(from) = &mut self.held_from {
                *from -= written;
            }
        }
        written
    }

    fn take_taken(&mut self) -> bool {
        std::mem::take(&mut self.taken)
    }
}

#[cfg(test)]
mod tests;
