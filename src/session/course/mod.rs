//! A session of the course protocol: request lines in, answers out.
//!
//! The connection hands in what it read; requests are answered straight
//! from those bytes, and the session keeps bytes of its own only for what
//! is left over (an incomplete line, or lines held back while its output is
//! over the limit). Idle sessions therefore hold no buffers at all.
//!
//! Output is bounded, answer by answer and line by line: a `get` answer is
//! written only while the unsent output is under `max_pending_output`, and
//! stops after a whole line to go on later (see [`answer::Resume`]), so a
//! peer that never reads costs the server at most that much, whatever it
//! asks for. All sessions' output together is bounded too: past
//! `ALWAYS_ALLOWED_OUTPUT_BYTES` of its own, a session adds output only
//! while the engine's `--max-output-memory` has room, and otherwise waits
//! for it ([`CourseSession::waits_for_shared_room`]).
//!
//! A durable engine logs the turn's puts at the end of the turn: their
//! `ok`s, and everything after them, are held until then (see
//! [`CourseSession::settle`]).

mod answer;

use super::bounds::{Limits, RETAIN_BUFFER_BYTES};
use super::budget::Budget;
use super::output::Output;
use super::phase::Phase;
use crate::engine::{Engine, EngineError, Event};
use crate::protocol::response;
use crate::protocol::{Framed, LineFramer, RequestError};
use answer::Resume;
use std::net::SocketAddr;

pub struct CourseSession {
    /// Named in the warnings about its bad requests.
    peer: SocketAddr,
    phase: Phase,
    framer: LineFramer,
    /// Input not yet answered. Reading: an incomplete line. Throttled and
    /// Stopping: complete lines held back while output was over the limit
    /// or an answer was being written (and perhaps an incomplete line
    /// after them). Otherwise empty.
    input: Vec<u8>,
    /// A `get` answer that ran out of room, to go on with before anything else.
    answering: Option<Resume>,
    output: Output,
    /// Where in the output the `ok`s of held puts are, to be turned into
    /// errors if the commit fails.
    held_acks: Vec<usize>,
    /// Answer bytes this service call may still produce.
    budget: Budget,
    /// A whole request arrived since the loop last looked.
    active: bool,
}

impl CourseSession {
    pub fn new(peer: SocketAddr, max_line: usize) -> Self {
        CourseSession {
            peer,
            phase: Phase::Reading,
            framer: LineFramer::new(max_line),
            input: Vec::new(),
            answering: None,
            output: Output::default(),
            held_acks: Vec::new(),
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

    /// Whether the session has no room only because all connections'
    /// output has reached `--max-output-memory`: it has answers to go on
    /// with, or may read more, once some of that is sent.
    pub fn waits_for_shared_room(&self, limits: &Limits) -> bool {
        self.budget.waits_for_shared_room(self.output.pending(), limits)
    }

    fn produced(&mut self, n: usize) {
        self.budget.produced(n);
    }

    pub fn begin(&mut self, engine: &mut Engine, limits: &Limits) {
        debug_assert!(!self.output.is_holding(), "held output outlived its turn");
        self.budget.begin(engine);
        if self.answering.is_some() && self.room(limits) > 0 {
            self.go_on_answering(engine, limits);
        }
        // Lines held back (an unfinished answer comes first).
        if self.answering.is_none() && self.has_backlog() && self.room(limits) > 0 {
            self.answer_kept_input(engine, limits);
        }
        if self.input.is_empty() {
            self.input.shrink_to(RETAIN_BUFFER_BYTES);
        }
    }

    pub fn wants_input(&self, limits: &Limits) -> bool {
        self.phase == Phase::Reading && self.room(limits) > 0
    }

    /// Answers freshly read bytes, keeping whatever is left over.
    pub fn receive(&mut self, data: &[u8], engine: &mut Engine, limits: &Limits) {
        debug_assert_eq!(self.phase, Phase::Reading, "input while not reading");
        if self.input.is_empty() {
            let (used, held) = self.answer(data, engine, limits);
            self.input.extend_from_slice(&data[used..]);
            self.after_answering(held);
        } else {
            // An incomplete line is waiting: the new bytes continue it.
            self.input.extend_from_slice(data);
            self.answer_kept_input(engine, limits);
        }
        if self.input.is_empty() {
            self.input.shrink_to(RETAIN_BUFFER_BYTES);
        }
    }

    pub fn end_of_input(&mut self) {
        // A line without its `\n` at end of stream is not a request; it is
        // dropped with the connection.
        if self.phase == Phase::Reading {
            self.input = Vec::new();
        }
        self.phase = self.phase.at_end_of_input();
    }

    pub fn stop(&mut self) {
        // Only an incomplete line is waiting: it is never answered.
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
        self.answering.is_some() || (matches!(self.phase, Phase::Throttled | Phase::Stopping) && !self.input.is_empty())
    }

    /// After a flush: a draining session with everything sent is done.
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

    /// After the turn's commit: releases the held output, its `ok`s turned
    /// into `error\nnot stored: <cause>` answers if the commit failed.
    pub fn settle(&mut self, commit: Result<(), &EngineError>) {
        let Some(from) = self.output.release() else {
            return;
        };
        if let Err(error) = commit {
            let out = self.output.buf_mut();
            let held = out.split_off(from);
            let mut copied = 0;
            for &ack in &self.held_acks {
                let at = ack - from;
                debug_assert_eq!(&held[at..at + response::OK_EMPTY.len()], response::OK_EMPTY);
                out.extend_from_slice(&held[copied..at]);
                answer::write_engine_error(out, error);
                copied = at + response::OK_EMPTY.len();
            }
            out.extend_from_slice(&held[copied..]);
        }
        self.held_acks.clear();
        if self.held_acks.capacity() > RETAIN_BUFFER_BYTES / std::mem::size_of::<usize>() {
            self.held_acks = Vec::new();
        }
    }

    /// Answers what `input` holds and keeps only what is left over.
    fn answer_kept_input(&mut self, engine: &mut Engine, limits: &Limits) {
        let mut input = std::mem::take(&mut self.input);
        let (used, held) = self.answer(&input, engine, limits);
        input.drain(..used);
        self.input = input;
        self.after_answering(held);
    }

    /// The phase after answering: throttled while requests or an answer
    /// wait for room. `held`: unanswered bytes are left that may hold
    /// complete lines.
    fn after_answering(&mut self, held: bool) {
        match self.phase {
            Phase::Reading | Phase::Throttled => {
                self.phase = if held || self.answering.is_some() {
                    Phase::Throttled
                } else {
                    Phase::Reading
                };
            }
            // Only an incomplete line is left: it is never answered.
            Phase::Stopping if !held => self.input.clear(),
            _ => {}
        }
    }

    /// Answers complete lines at the front of `data` until it runs out, the
    /// room for output runs out (checked between requests), or an answer is
    /// cut into slices. Returns how many bytes were used up, and whether
    /// it stopped before an incomplete line (the rest is held back).
    fn answer(&mut self, data: &[u8], engine: &mut Engine, limits: &Limits) -> (usize, bool) {
        self.compact_output();
        let mut pos = 0;
        loop {
            let room = self.room(limits);
            if room == 0 || self.answering.is_some() {
                return (pos, pos < data.len());
            }
            let (framed, used) = self.framer.next(&data[pos..]);
            pos += used;
            let out = self.output.buf_mut();
            let before = out.len();
            if !matches!(framed, Framed::Incomplete) {
                self.active = true;
            }
            match framed {
                Framed::Line(line) => {
                    let unlogged = engine.unlogged();
                    match answer::answer_line(line, engine, out, room) {
                        Ok(resume) => self.answering = resume,
                        Err(cause) => engine.count(Event::BadRequest { cause, peer: self.peer }),
                    }
                    if engine.unlogged() > unlogged {
                        self.output.hold_from(before);
                        self.held_acks.push(before);
                    }
                }
                Framed::TooLong => {
                    engine.count(Event::BadRequest {
                        cause: RequestError::LineTooLong,
                        peer: self.peer,
                    });
                    answer::reject(out);
                }
                Framed::Incomplete => return (pos, false),
            }
            self.produced(self.output.len() - before);
        }
    }

    /// Writes more of an answer that ran out of room.
    fn go_on_answering(&mut self, engine: &mut Engine, limits: &Limits) {
        self.compact_output();
        let room = self.room(limits);
        if let Some(from) = self.answering.take() {
            let out = self.output.buf_mut();
            let before = out.len();
            self.answering = answer::resume(from, engine, out, room);
            let produced = out.len() - before;
            self.produced(produced);
        }
        let held = !self.input.is_empty();
        self.after_answering(held);
    }

    fn compact_output(&mut self) {
        let moved = self.output.compact();
        if moved > 0 {
            self.held_acks.iter_mut().for_each(|ack| *ack -= moved);
        }
    }
}
