//! What every session keeps the same way, whatever its protocol: the
//! peer, the [`Phase`], the input held back, the answer bytes and their
//! [`Budget`], and whether the peer was active. The loop's questions that
//! only these answer (its phase, its output, whether it wants input) are
//! answered here once, for [`super::Session`]; each protocol's session
//! embeds one and adds what is its own.

use super::bounds::Limits;
use super::budget::Budget;
use super::output::Output;
use super::phase::Phase;
use std::net::SocketAddr;

pub struct State {
    /// Named in the warnings about the peer's bad requests.
    pub peer: SocketAddr,
    pub phase: Phase,
    /// Bytes read and not answered yet: an incomplete request, or whole
    /// ones held back while there was no room for their answers.
    pub input: Vec<u8>,
    pub output: Output,
    /// Answer bytes this service call may still produce.
    pub budget: Budget,
    /// A whole request arrived since the loop last looked.
    pub active: bool,
}

impl State {
    pub fn new(peer: SocketAddr) -> State {
        State {
            peer,
            phase: Phase::Reading,
            input: Vec::new(),
            output: Output::default(),
            budget: Budget::default(),
            active: false,
        }
    }

    /// Answer bytes the session may produce now.
    pub fn room(&self, limits: &Limits) -> usize {
        self.budget.room(self.output.pending(), limits)
    }

    /// Whether the session has no room only because all connections'
    /// output has reached `--max-output-memory`: it has answers to go on
    /// with, or may read more, once some of that is sent.
    pub fn waits_for_shared_room(&self, limits: &Limits) -> bool {
        self.budget.waits_for_shared_room(self.output.pending(), limits)
    }

    pub fn wants_input(&self, limits: &Limits) -> bool {
        self.phase == Phase::Reading && self.room(limits) > 0
    }

    /// The peer's end of stream. Input kept while reading is an incomplete
    /// request: it is never answered, and dropped with the connection.
    pub fn end_of_input(&mut self) {
        if self.phase == Phase::Reading {
            self.input = Vec::new();
        }
        self.phase = self.phase.at_end_of_input();
    }

    /// The server is stopping; as at the end of input, an incomplete
    /// request is dropped (whole ones held back are still answered).
    pub fn stop(&mut self) {
        if self.phase == Phase::Reading {
            self.input = Vec::new();
        }
        self.phase = self.phase.at_stop();
    }

    pub fn linger(&mut self) {
        self.phase = self.phase.lingering();
    }

    pub fn dropped_input(&mut self) {
        self.phase = self.phase.dropped_input();
    }

    /// Whether requests wait to be answered: the rest of an answer
    /// (`answering`), or whole requests held back for want of room.
    pub fn has_backlog(&self, answering: bool) -> bool {
        answering || (matches!(self.phase, Phase::Throttled | Phase::Stopping) && !self.input.is_empty())
    }

    /// After a flush: a draining session with everything sent is done.
    pub fn flushed(&mut self) {
        self.output.tidy();
        if self.phase == Phase::Draining && self.output.pending() == 0 {
            self.phase = Phase::Closing;
        }
    }

    /// Whether the peer sent a whole request or took answer bytes since the
    /// last call.
    pub fn take_active(&mut self) -> bool {
        let taken = self.output.take_taken();
        std::mem::take(&mut self.active) || taken
    }
}
