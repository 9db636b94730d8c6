//! A session of the HTTP API (`--http-listen`): HTTP/1.1 requests in,
//! answers out, in order, with keep-alive and pipelining.
//!
//! Requests are cut from the bytes read by [`head::next`] (httparse for the
//! head, `Content-Length` for the body), each bounded: the input kept
//! between reads is at most one head ([`head::MAX_HEAD_BYTES`]) and one
//! body ([`head::MAX_BODY_BYTES`]). A whole request is answered at once
//! from the engine ([`api::answer`]), its answer built whole, at most
//! [`api::MAX_ANSWER_BYTES`], and put in the output.
//!
//! Output is bounded as for every protocol ([`Budget`]): a request is
//! answered only while the connection has room under `--max-pending-output`,
//! its slice of the turn and the output memory all connections share;
//! otherwise it waits, read but unanswered, and nothing more is read. So a
//! connection's unsent output passes its bound by at most one answer.
//!
//! A request whose framing cannot be trusted (a malformed head, a head or
//! body over its bound, a chunked body) is answered with its status and the
//! connection closes after it, with the lingering close of a stopping
//! session (`Phase::Stopping`), so the peer reads the answer before the
//! close. So does an answer to `Connection: close` or HTTP/1.0.

mod api;
mod cluster;
mod fetch;
mod form;
mod head;
mod reply;

use super::bounds::{Limits, RETAIN_BUFFER_BYTES};
use super::budget::Budget;
use super::output::Output;
use super::phase::Phase;
use crate::engine::{Engine, EngineError};
use head::{Framed, Method};
use reply::Reply;
use std::net::SocketAddr;

pub struct HttpSession {
    /// Named in the debug log of refused requests.
    peer: SocketAddr,
    phase: Phase,
    /// Bytes read and not yet answered: an incomplete request, or whole
    /// requests held back while the output has no room.
    input: Vec<u8>,
    output: Output,
    budget: Budget,
    /// A whole request arrived since the loop last looked.
    active: bool,
}

impl HttpSession {
    pub fn new(peer: SocketAddr) -> Self {
        HttpSession {
            peer,
            phase: Phase::Reading,
            input: Vec::new(),
            output: Output::default(),
            budget: Budget::default(),
            active: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn output(&self) -> &Output {
        &self.output
    }

    pub fn output_mut(&mut self) -> &mut Output {
        &mut self.output
    }

    fn room(&self, limits: &Limits) -> usize {
        self.budget.room(self.output.pending(), limits)
    }

    pub fn waits_for_shared_room(&self, limits: &Limits) -> bool {
        self.budget.waits_for_shared_room(self.output.pending(), limits)
    }

    pub fn begin(&mut self, engine: &mut Engine, limits: &Limits) {
        self.budget.begin(engine);
        if self.has_backlog() && self.room(limits) > 0 {
            self.answer_input(engine, limits);
        }
    }

    pub fn wants_input(&self, limits: &Limits) -> bool {
        self.phase == Phase::Reading && self.room(limits) > 0
    }

    pub fn receive(&mut self, data: &[u8], engine: &mut Engine, limits: &Limits) {
        debug_assert_eq!(self.phase, Phase::Reading, "input while not reading");
        self.input.extend_from_slice(data);
        self.answer_input(engine, limits);
    }

    pub fn end_of_input(&mut self) {
        if self.phase == Phase::Reading {
            self.input = Vec::new();
        }
        self.phase = self.phase.at_end_of_input();
    }

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

    pub fn has_backlog(&self) -> bool {
        matches!(self.phase, Phase::Throttled | Phase::Stopping) && !self.input.is_empty()
    }

    pub fn flushed(&mut self) {
        self.output.tidy();
        if self.phase == Phase::Draining && self.output.pending() == 0 {
            self.phase = Phase::Closing;
        }
    }

    pub fn take_active(&mut self) -> bool {
        let taken = self.output.take_taken();
        std::mem::take(&mut self.active) || taken
    }

    /// Nothing of an HTTP answer waits for the log: the API only reads.
    pub fn settle(&mut self, _commit: Result<(), &EngineError>) {}

    /// Answers whole requests at the front of the input while there is
    /// room, and keeps the rest.
    fn answer_input(&mut self, engine: &mut Engine, limits: &Limits) {
        self.output.compact();
        let input = std::mem::take(&mut self.input);
        let mut pos = 0;
        let mut closing = false;
        while pos < input.len() && self.room(limits) > 0 {
            let before = self.output.len();
            match head::next(&input[pos..]) {
                Framed::Incomplete => break,
                Framed::Request(request, used) => {
                    self.active = true;
                    pos += used;
                    let reply = api::answer(&request, engine, crate::clock::unix_now());
                    closing = !request.keep_alive;
                    reply::write(self.output.buf_mut(), &reply, closing, request.method == Method::Head);
                }
                Framed::Refused(refusal) => {
                    self.active = true;
                    log::debug!("refused an HTTP request from {}: {}", self.peer, refusal.reason);
                    let reply = Reply::error(refusal.status, &refusal.reason);
                    reply::write(self.output.buf_mut(), &reply, true, false);
                    closing = true;
                }
            }
            self.budget.produced(self.output.len() - before);
            if closing {
                break;
            }
        }
        self.input = input;
        self.input.drain(..pos);
        if closing {
            // Nothing after this answer is read or answered.
            self.input = Vec::new();
            self.phase = match self.phase {
                Phase::Draining => Phase::Draining,
                _ => Phase::Stopping,
            };
            return;
        }
        let held = !self.input.is_empty() && self.room(limits) == 0;
        self.phase = match self.phase {
            Phase::Reading | Phase::Throttled if held => Phase::Throttled,
            Phase::Reading | Phase::Throttled => Phase::Reading,
            other => other,
        };
        if self.phase == Phase::Stopping && !held {
            // Only an incomplete request is left: it is never answered.
            self.input.clear();
        }
        if self.input.is_empty() {
            self.input.shrink_to(RETAIN_BUFFER_BYTES);
        }
    }
}

#[cfg(test)]
mod tests;
