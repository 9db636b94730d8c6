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
//! | `bounds` | the limits on one session's memory and work |
//! | `budget` | the answer bytes a session may add now, under its own and the shared output bounds |
//! | `output` | a session's answer bytes: what the socket took, what waits for the commit |
//! | `phase` | where a session is in its life |
//! | `course` | the course protocol: request lines in, answers out, `put` answers held for the turn's commit |
//! | `course::answer` | one request line → engine effect + answer bytes; long `get` answers in slices |
//! | `graphite` | Graphite plaintext: lines in, points to the engine, no answers; UDP datagrams too |
//! | `http` | the Graphite-compatible HTTP API and the page: HTTP/1.1 requests in, whole answers out, in order |

mod bounds;
mod budget;
mod course;
mod graphite;
mod http;
mod output;
mod phase;
mod state;

use crate::engine::{Engine, EngineError};
use course::CourseSession;
use graphite::GraphiteSession;
use http::HttpSession;
use state::State;
use std::net::SocketAddr;

pub use bounds::{Limits, ANSWER_SLICE_BYTES};
pub use graphite::receive_datagram as receive_graphite_datagram;
pub use output::Output;
pub use phase::Phase;

/// The protocols the server speaks; a listener is typed by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The course's line protocol: `put`, `get`, `stats`.
    Course,
    /// Graphite's plaintext lines, `<path> <value> [<timestamp>]`: no answers.
    Graphite,
    /// HTTP/1.1: the Graphite-compatible API and the page (`--http-listen`).
    Http,
}

/// A session of any protocol: static dispatch, no allocation per call.
pub enum Session {
    Course(CourseSession),
    Graphite(GraphiteSession),
    Http(HttpSession),
}

/// Calls the same method on whichever session this is.
macro_rules! dispatch {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            Session::Course($s) => $call,
            Session::Graphite($s) => $call,
            Session::Http($s) => $call,
        }
    };
}

impl Session {
    fn state(&self) -> &State {
        dispatch!(self, s => &s.state)
    }

    fn state_mut(&mut self) -> &mut State {
        dispatch!(self, s => &mut s.state)
    }

    /// A session for a new connection from `peer` (named in logs).
    pub fn new(protocol: Protocol, peer: SocketAddr, limits: &Limits) -> Session {
        match protocol {
            Protocol::Course => Session::Course(CourseSession::new(peer, limits.max_line_bytes)),
            Protocol::Graphite => Session::Graphite(GraphiteSession::new(peer, limits.max_line_bytes)),
            Protocol::Http => Session::Http(HttpSession::new(peer)),
        }
    }

    pub fn phase(&self) -> Phase {
        self.state().phase
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
        match self {
            // Never throttled: it has no answers to make room for.
            Session::Graphite(s) => s.state.phase == Phase::Reading,
            _ => self.state().wants_input(limits),
        }
    }

    /// Answers bytes just read, keeping what cannot be answered yet.
    pub fn receive(&mut self, data: &[u8], engine: &mut Engine, limits: &Limits) {
        dispatch!(self, s => s.receive(data, engine, limits))
    }

    /// The peer's end of stream.
    pub fn end_of_input(&mut self) {
        self.state_mut().end_of_input()
    }

    /// The server is stopping.
    pub fn stop(&mut self) {
        self.state_mut().stop()
    }

    /// Stopping and everything sent: from now on the peer's bytes are
    /// dropped ([`Session::dropped_input`]) until its end of stream.
    pub fn linger(&mut self) {
        self.state_mut().linger()
    }

    /// Lingering: the peer sent more, which was dropped.
    pub fn dropped_input(&mut self) {
        self.state_mut().dropped_input()
    }

    /// Whether the session has no room for answers only because all
    /// connections' output together has reached `--max-output-memory`.
    pub fn waits_for_shared_room(&self, limits: &Limits) -> bool {
        match self {
            // Never: it has no output to wait for.
            Session::Graphite(_) => false,
            // Also when its next request waits to hold an answer.
            Session::Http(s) => s.waits_for_shared_room(limits),
            Session::Course(s) => s.state.waits_for_shared_room(limits),
        }
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
        self.state_mut().flushed()
    }

    pub fn output(&self) -> &Output {
        &self.state().output
    }

    /// The heap bytes an unfinished answer holds to write the rest (an HTTP
    /// `/render`'s series), besides its output: they count against
    /// `--max-output-memory` with the unsent output. Only HTTP answers
    /// hold any; a course `get` reads the store as it goes.
    pub fn held_answer_bytes(&self) -> usize {
        match self {
            Session::Http(s) => s.held_answer_bytes(),
            Session::Course(_) | Session::Graphite(_) => 0,
        }
    }

    pub fn output_mut(&mut self) -> &mut Output {
        &mut self.state_mut().output
    }

    /// After the turn's commit: releases the output held for it, its put
    /// answers turned into errors if the commit failed.
    pub fn settle(&mut self, commit: Result<(), &EngineError>) {
        dispatch!(self, s => s.settle(commit))
    }

    /// Whether the peer sent a whole request or took answer bytes since the
    /// last call (for the idle timeout).
    pub fn take_active(&mut self) -> bool {
        self.state_mut().take_active()
    }
}

#[cfg(test)]
pub(super) mod tests;
