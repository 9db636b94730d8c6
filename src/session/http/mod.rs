//! A session of the HTTP API (`--http-listen`): HTTP/1.1 requests in,
//! answers out, in order, with keep-alive and pipelining.
//!
//! Requests are cut from the bytes read by [`head::next`] (httparse for the
//! head, `Content-Length` for the body), each bounded: the input kept
//! between reads is at most one head ([`head::MAX_HEAD_BYTES`]) and one
//! body ([`head::MAX_BODY_BYTES`]). A request sent with `Expect:
//! 100-continue` gets `100 Continue` once its head is here and its body is
//! not (or its refusal at once, if its head alone is refused). A whole
//! request is answered at once from the engine ([`api::answer`]): most
//! answers are built whole, at most [`api::MAX_ANSWER_BYTES`], and put in
//! the output; `/render`'s JSON and CSV are bodies written a slice at a time
//! ([`reply::SlicedBody`]): whole with its length if the first slice is all
//! of it, else in chunks, one each turn, with the requests behind it
//! waiting until the last.
//!
//! Output is bounded as for every protocol ([`super::budget::Budget`]): a request is
//! answered, or a slice written, only while the connection has room under
//! `--max-pending-output`, its slice of the turn and the output memory all
//! connections share; otherwise it waits, read but unanswered, and nothing
//! more is read. So a connection's unsent output passes its bound by at
//! most one answer built whole, or one slice.
//!
//! A sliced answer also holds its evaluated series until they are written
//! (up to the fetch bound, 32 MB), which the connection's 64 KiB of output
//! always allowed does not cover: those bytes count with the output against
//! `--max-output-memory` ([`HttpSession::held_answer_bytes`]), and a request
//! that evaluates series or builds a big answer (`/render`,
//! `/metrics/*`) is answered only while that shared memory has room;
//! otherwise it waits as above, for other clients to read
//! ([`Front::WaitsForSharedRoom`]).
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

use super::bounds::{Limits, ALWAYS_ALLOWED_OUTPUT_BYTES, RETAIN_BUFFER_BYTES};
use super::phase::Phase;
use super::state::State;
use crate::engine::{Engine, EngineError, Event, HttpRoute};
use api::Answer;
use head::{Framed, Method, Request};
use reply::{Framing, Reply, Sliced, SlicedBody};
use std::net::SocketAddr;

pub struct HttpSession {
    pub(super) state: State,
    /// The answer whose body is being written a slice at a time; requests
    /// after it wait.
    answering: Option<Unfinished>,
    /// Whether the request at the front of the input, which waits for its
    /// body, was sent `100 Continue`.
    continued: Continued,
    /// Why the whole request at the front of the input is not answered.
    front: Front,
}

/// Why a whole request at the front of the input waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    /// For nothing, or for the connection's own room.
    Free,
    /// Its answer holds memory until read, and all connections' output
    /// and held answers have reached `--max-output-memory`.
    WaitsForSharedRoom,
}

/// Whether the request waiting for its body was told to send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Continued {
    No,
    Sent,
}

/// A sliced answer under way: the rest of its body and how it is framed.
struct Unfinished {
    body: Box<dyn SlicedBody>,
    framing: Framing,
}

impl HttpSession {
    pub fn new(peer: SocketAddr) -> Self {
        HttpSession {
            state: State::new(peer),
            answering: None,
            continued: Continued::No,
            front: Front::Free,
        }
    }

    /// The heap bytes the answer under way holds to write the rest.
    pub fn held_answer_bytes(&self) -> usize {
        self.answering
            .as_ref()
            .map_or(0, |unfinished| unfinished.body.held_bytes())
    }

    pub fn waits_for_shared_room(&self, limits: &Limits) -> bool {
        self.state.waits_for_shared_room(limits) || self.front == Front::WaitsForSharedRoom
    }

    pub fn begin(&mut self, engine: &mut Engine, limits: &Limits) {
        self.state.budget.begin(engine);
        if self.answering.is_some() && self.state.room(limits) > 0 {
            self.go_on_answering(engine, limits);
        }
        if self.answering.is_none() && self.has_backlog() && self.state.room(limits) > 0 {
            self.answer_input(engine, limits);
        }
    }

    pub fn receive(&mut self, data: &[u8], engine: &mut Engine, limits: &Limits) {
        debug_assert_eq!(self.state.phase, Phase::Reading, "input while not reading");
        self.state.input.extend_from_slice(data);
        self.answer_input(engine, limits);
    }

    pub fn has_backlog(&self) -> bool {
        self.state.has_backlog(self.answering.is_some())
    }

    /// Nothing of an HTTP answer waits for the log: the API only reads.
    pub fn settle(&mut self, _commit: Result<(), &EngineError>) {}

    /// Answers whole requests at the front of the input while there is
    /// room, and keeps the rest.
    fn answer_input(&mut self, engine: &mut Engine, limits: &Limits) {
        self.state.output.compact();
        let input = std::mem::take(&mut self.state.input);
        let mut pos = 0;
        let mut closing = false;
        self.front = Front::Free;
        while pos < input.len() && self.state.room(limits) > 0 && self.answering.is_none() {
            let before = self.state.output.len();
            match head::next(&input[pos..]) {
                Framed::Incomplete => break,
                Framed::WantsContinue(request) => {
                    if let Some(reply) = api::refusal(&request) {
                        // Refused from its head: the client need not send
                        // the body, and what it sends anyway is not read.
                        self.state.active = true;
                        count(engine, api::route_of(&request), reply.status.code(), false);
                        reply::write(
                            self.state.output.buf_mut(),
                            &reply,
                            true,
                            request.method == Method::Head,
                        );
                        closing = true;
                    } else if self.continued == Continued::No {
                        self.state.output.buf_mut().extend_from_slice(reply::CONTINUE);
                        engine.count(Event::HttpContinue);
                        self.continued = Continued::Sent;
                    }
                    if !closing {
                        break;
                    }
                }
                Framed::Request(request, _) if api::holds_memory(&request) && !self.state.budget.has_shared_room() => {
                    // Evaluated, it would hold memory nobody may be
                    // reading: it waits for other clients to read theirs.
                    self.front = Front::WaitsForSharedRoom;
                    break;
                }
                Framed::Request(request, used) => {
                    self.state.active = true;
                    self.continued = Continued::No;
                    pos += used;
                    closing = !request.keep_alive;
                    let room = self.state.room(limits);
                    let route = api::route_of(&request);
                    match api::answer(&request, engine, crate::clock::unix_now()) {
                        Answer::Whole(reply) => {
                            count(engine, route, reply.status.code(), false);
                            reply::write(
                                self.state.output.buf_mut(),
                                &reply,
                                closing,
                                request.method == Method::Head,
                            );
                        }
                        Answer::Sliced(sliced) => {
                            let framing = self.start_sliced(sliced, &request, room, closing);
                            closing |= framing == Framing::UntilClose;
                            count(engine, route, 200, self.answering.is_some());
                        }
                    }
                }
                Framed::Refused(refusal) => {
                    self.state.active = true;
                    log::debug!("refused an HTTP request from {}: {}", self.state.peer, refusal.reason);
                    count(engine, HttpRoute::None, refusal.status.code(), false);
                    let reply = Reply::error(refusal.status, &refusal.reason);
                    reply::write(self.state.output.buf_mut(), &reply, true, false);
                    closing = true;
                }
            }
            self.state.budget.produced(self.state.output.len() - before);
            self.state.budget.held(self.held_answer_bytes());
            if closing {
                break;
            }
        }
        self.state.input = input;
        self.state.input.drain(..pos);
        if closing {
            // Nothing after this answer is read or answered.
            self.state.input = Vec::new();
            self.state.phase = match self.state.phase {
                Phase::Draining => Phase::Draining,
                _ => Phase::Stopping,
            };
            return;
        }
        self.after_answering(limits);
    }

    /// The phase once the input has been answered as far as it could be.
    fn after_answering(&mut self, limits: &Limits) {
        let waits = self.state.room(limits) == 0 || self.front == Front::WaitsForSharedRoom;
        let held = self.answering.is_some() || (!self.state.input.is_empty() && waits);
        self.state.phase = match self.state.phase {
            Phase::Reading | Phase::Throttled if held => Phase::Throttled,
            Phase::Reading | Phase::Throttled => Phase::Reading,
            other => other,
        };
        if self.state.phase == Phase::Stopping && !held {
            // Only an incomplete request is left: it is never answered.
            self.state.input.clear();
        }
        if self.state.input.is_empty() {
            self.state.input.shrink_to(RETAIN_BUFFER_BYTES);
        }
    }

    /// Writes a sliced answer's head and first slice: with its length if
    /// that slice is the whole body, else chunked and kept to go on with.
    /// Returns its framing. An answer of up to the output every connection
    /// may always have (`ALWAYS_ALLOWED_OUTPUT_BYTES`, 64 KiB) is always
    /// whole, as every other small answer is, even when the room left is
    /// less: so Grafana's usual answers keep their `Content-Length`, and
    /// a tiny room does not cut one into tiny chunks.
    fn start_sliced(&mut self, sliced: Sliced, request: &Request<'_>, room: usize, closing: bool) -> Framing {
        let Sliced { content_type, mut body } = sliced;
        let mut first = Vec::new();
        let head_only = request.method == Method::Head;
        let out = self.state.output.buf_mut();
        if body.write_slice(&mut first, room.max(ALWAYS_ALLOWED_OUTPUT_BYTES)) {
            let framing = Framing::Length(first.len());
            reply::write_head(out, reply::Status::Ok, content_type, framing, None, closing);
            if !head_only {
                out.extend_from_slice(&first);
            }
            return framing;
        }
        let framing = match request.http_1_1 {
            true => Framing::Chunked,
            false => Framing::UntilClose,
        };
        let close = closing || framing == Framing::UntilClose;
        reply::write_head(out, reply::Status::Ok, content_type, framing, None, close);
        if head_only {
            return framing;
        }
        let mut first = SliceReady(Some(first));
        reply::write_slice(out, &mut first, framing, room);
        self.answering = Some(Unfinished { body, framing });
        framing
    }

    /// Writes the next slice of the answer under way; once it is complete,
    /// the requests held behind it are answered while there is room.
    fn go_on_answering(&mut self, engine: &mut Engine, limits: &Limits) {
        self.state.output.compact();
        let room = self.state.room(limits);
        let Some(unfinished) = self.answering.as_mut() else {
            return;
        };
        let out = self.state.output.buf_mut();
        let before = out.len();
        let done = reply::write_slice(out, unfinished.body.as_mut(), unfinished.framing, room);
        let produced = out.len() - before;
        self.state.budget.produced(produced);
        if done {
            self.answering = None;
            match self.state.phase {
                // Requests read behind it, if there is room for them.
                Phase::Reading | Phase::Throttled if !self.state.input.is_empty() => self.answer_input(engine, limits),
                _ => self.after_answering(limits),
            }
        }
    }
}

/// Counts an answer in `stats`.
fn count(engine: &mut Engine, route: HttpRoute, status: u16, sliced: bool) {
    engine.count(Event::HttpAnswer { route, status, sliced });
}

/// A first slice already written, handed to [`reply::write_slice`] to be
/// framed.
struct SliceReady(Option<Vec<u8>>);

impl SlicedBody for SliceReady {
    fn write_slice(&mut self, out: &mut Vec<u8>, _room: usize) -> bool {
        out.extend_from_slice(&self.0.take().unwrap_or_default());
        false
    }

    /// Written at once, in the call it is made for.
    fn held_bytes(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests;
