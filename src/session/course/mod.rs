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
//! for it ([`State::waits_for_shared_room`]).
//!
//! A durable engine logs the turn's puts at the end of the turn: their
//! `ok`s, and everything after them, are held until then (see
//! [`CourseSession::settle`]).

mod answer;

use super::bounds::{Limits, RETAIN_BUFFER_BYTES};
use super::phase::Phase;
use super::state::State;
use crate::engine::{Engine, EngineError, Event};
use crate::protocol::response;
use crate::protocol::{Framed, LineFramer, RequestError};
use answer::Resume;
use std::net::SocketAddr;

pub struct CourseSession {
    pub(super) state: State,
    framer: LineFramer,
    /// A `get` answer that ran out of room, to go on with before anything else.
    answering: Option<Resume>,
    /// Where in the output the `ok`s of held puts are, to be turned into
    /// errors if the commit fails.
    held_acks: Vec<usize>,
}

impl CourseSession {
    pub fn new(peer: SocketAddr, max_line: usize) -> Self {
        CourseSession {
            state: State::new(peer),
            framer: LineFramer::new(max_line),
            answering: None,
            held_acks: Vec::new(),
        }
    }

    fn produced(&mut self, n: usize) {
        self.state.budget.produced(n);
    }

    pub fn begin(&mut self, engine: &mut Engine, limits: &Limits) {
        debug_assert!(!self.state.output.is_holding(), "held output outlived its turn");
        self.state.budget.begin(engine);
        if self.answering.is_some() && self.state.room(limits) > 0 {
            self.go_on_answering(engine, limits);
        }
        // Lines held back (an unfinished answer comes first).
        if self.answering.is_none() && self.has_backlog() && self.state.room(limits) > 0 {
            self.answer_kept_input(engine, limits);
        }
        if self.state.input.is_empty() {
            self.state.input.shrink_to(RETAIN_BUFFER_BYTES);
        }
    }

    /// Answers freshly read bytes, keeping whatever is left over.
    pub fn receive(&mut self, data: &[u8], engine: &mut Engine, limits: &Limits) {
        debug_assert_eq!(self.state.phase, Phase::Reading, "input while not reading");
        if self.state.input.is_empty() {
            let (used, held) = self.answer(data, engine, limits);
            self.state.input.extend_from_slice(&data[used..]);
            self.after_answering(held);
        } else {
            // An incomplete line is waiting: the new bytes continue it.
            self.state.input.extend_from_slice(data);
            self.answer_kept_input(engine, limits);
        }
        if self.state.input.is_empty() {
            self.state.input.shrink_to(RETAIN_BUFFER_BYTES);
        }
    }

    pub fn has_backlog(&self) -> bool {
        self.state.has_backlog(self.answering.is_some())
    }

    /// After the turn's commit: releases the held output, its `ok`s turned
    /// into `error\nnot stored: <cause>` answers if the commit failed.
    pub fn settle(&mut self, commit: Result<(), &EngineError>) {
        let Some(from) = self.state.output.release() else {
            return;
        };
        if let Err(error) = commit {
            let out = self.state.output.buf_mut();
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
        let mut input = std::mem::take(&mut self.state.input);
        let (used, held) = self.answer(&input, engine, limits);
        input.drain(..used);
        self.state.input = input;
        self.after_answering(held);
    }

    /// The phase after answering: throttled while requests or an answer
    /// wait for room. `held`: unanswered bytes are left that may hold
    /// complete lines.
    fn after_answering(&mut self, held: bool) {
        match self.state.phase {
            Phase::Reading | Phase::Throttled => {
                self.state.phase = if held || self.answering.is_some() {
                    Phase::Throttled
                } else {
                    Phase::Reading
                };
            }
            // Only an incomplete line is left: it is never answered.
            Phase::Stopping if !held => self.state.input.clear(),
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
            let room = self.state.room(limits);
            if room == 0 || self.answering.is_some() {
                return (pos, pos < data.len());
            }
            let (framed, used) = self.framer.next(&data[pos..]);
            pos += used;
            let out = self.state.output.buf_mut();
            let before = out.len();
            if !matches!(framed, Framed::Incomplete) {
                self.state.active = true;
            }
            match framed {
                Framed::Line(line) => {
                    let unlogged = engine.unlogged();
                    match answer::answer_line(line, engine, out, room) {
                        Ok(resume) => self.answering = resume,
                        Err(cause) => engine.count(Event::BadRequest {
                            cause,
                            peer: self.state.peer,
                        }),
                    }
                    if engine.unlogged() > unlogged {
                        self.state.output.hold_from(before);
                        self.held_acks.push(before);
                    }
                }
                Framed::TooLong => {
                    engine.count(Event::BadRequest {
                        cause: RequestError::LineTooLong,
                        peer: self.state.peer,
                    });
                    answer::reject(out);
                }
                Framed::Incomplete => return (pos, false),
            }
            self.produced(self.state.output.len() - before);
        }
    }

    /// Writes more of an answer that ran out of room.
    fn go_on_answering(&mut self, engine: &mut Engine, limits: &Limits) {
        self.compact_output();
        let room = self.state.room(limits);
        if let Some(from) = self.answering.take() {
            let out = self.state.output.buf_mut();
            let before = out.len();
            self.answering = answer::resume(from, engine, out, room);
            let produced = out.len() - before;
            self.produced(produced);
        }
        let held = !self.state.input.is_empty();
        self.after_answering(held);
    }

    fn compact_output(&mut self) {
        let moved = self.state.output.compact();
        if moved > 0 {
            self.held_acks.iter_mut().for_each(|ack| *ack -= moved);
        }
    }
}
