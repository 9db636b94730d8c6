//! A session of the Graphite plaintext protocol: `<path> <value>
//! [<timestamp>]` lines in, points to the engine, and never an answer byte.
//!
//! Lines are cut by [`PlaintextDecoder`] (the course protocol's bounded
//! framer) and parsed by `graphite::plaintext`. A bad line, a NaN or
//! infinite value or an over-long line is skipped and counted by cause
//! (`graphite.errors.<cause>`); the connection goes on with the next line,
//! as carbon does, and is never closed for it. A point the engine refuses
//! (the log is failing) is counted in `graphite.not_stored`: there is no
//! one to tell.
//!
//! Every point goes through [`Engine::put_graphite`], so it is in the turn's
//! batch and logged at the turn's commit exactly like a course `put`; with
//! no answers to hold, the session has nothing to settle.
//!
//! A UDP datagram is the same lines without a connection:
//! [`receive_datagram`] stores them, its last line with or without `\n`.

use super::bounds::{Limits, RETAIN_BUFFER_BYTES};
use super::phase::Phase;
use super::state::State;
use crate::engine::{Engine, EngineError, Event};
use crate::graphite::plaintext::{
    datagram_lines, parse_line, Decoded, Metric, PlaintextDecoder, PlaintextError, Timestamp,
};
use std::net::SocketAddr;

/// Its [`State`] differs from an answering session's: its input is only an
/// incomplete line from the last read (at most `--max-line-bytes`: the
/// framer skips a longer one without keeping it), dropped at the end of
/// stream as carbon drops it (Twisted's line receiver keeps only whole
/// lines); its output is always empty, so it is never Throttled.
pub struct GraphiteSession {
    pub(super) state: State,
    decoder: PlaintextDecoder,
}

impl GraphiteSession {
    pub fn new(peer: SocketAddr, max_line: usize) -> Self {
        GraphiteSession {
            state: State::new(peer),
            decoder: PlaintextDecoder::new(max_line),
        }
    }

    /// Nothing is ever left over from the last call.
    pub fn begin(&mut self, _engine: &mut Engine, _limits: &Limits) {}

    /// Stores every complete line of what was read, and keeps an incomplete
    /// last line for the next read.
    pub fn receive(&mut self, data: &[u8], engine: &mut Engine, _limits: &Limits) {
        debug_assert_eq!(self.state.phase, Phase::Reading, "input while not reading");
        let mut now = Now::default();
        if self.state.input.is_empty() {
            let used = self.store_lines(data, engine, &mut now);
            self.state.input.extend_from_slice(&data[used..]);
        } else {
            // An incomplete line is waiting: the new bytes continue it.
            let mut input = std::mem::take(&mut self.state.input);
            input.extend_from_slice(data);
            let used = self.store_lines(&input, engine, &mut now);
            input.drain(..used);
            self.state.input = input;
        }
        if self.state.input.is_empty() {
            self.state.input.shrink_to(RETAIN_BUFFER_BYTES);
        }
    }

    /// Stores the complete lines at the front of `data`; returns the bytes
    /// used (the rest is an incomplete line).
    fn store_lines(&mut self, data: &[u8], engine: &mut Engine, now: &mut Now) -> usize {
        let mut pos = 0;
        loop {
            let (decoded, used) = self.decoder.next(&data[pos..]);
            pos += used;
            match decoded {
                Decoded::Incomplete => return pos,
                Decoded::Metric(metric) => store(metric, engine, now),
                Decoded::Blank => {}
                Decoded::Bad(cause) => bad_line(cause, self.state.peer, engine),
            }
            self.state.active = true;
        }
    }

    /// Never: every complete line is stored as soon as it is read.
    pub fn has_backlog(&self) -> bool {
        false
    }

    /// Nothing is ever held for the commit: a refused point is counted by
    /// the engine, not answered.
    pub fn settle(&mut self, _commit: Result<(), &EngineError>) {}
}

/// Stores the lines of one UDP datagram from `peer`: every line, the last
/// one with or without its `\n` (carbon's UDP receiver splits the datagram
/// on `\n` the same way), each at most `max_line` bytes.
pub fn receive_datagram(datagram: &[u8], peer: SocketAddr, engine: &mut Engine, limits: &Limits) {
    engine.count(Event::GraphiteDatagram(datagram.len()));
    let mut now = Now::default();
    for line in datagram_lines(datagram) {
        if line.len() > limits.max_line_bytes {
            bad_line(PlaintextError::LineTooLong, peer, engine);
            continue;
        }
        match parse_line(line) {
            Ok(Some(metric)) => store(metric, engine, &mut now),
            Ok(None) => {}
            Err(cause) => bad_line(cause, peer, engine),
        }
    }
}

/// The clock, read at most once per read or datagram, and only if a line
/// asks for it (`-1` or no timestamp).
#[derive(Default)]
struct Now(Option<i64>);

impl Now {
    fn get(&mut self) -> i64 {
        *self.0.get_or_insert_with(crate::clock::unix_now)
    }
}

fn store(metric: Metric<'_>, engine: &mut Engine, now: &mut Now) {
    let timestamp = match metric.timestamp {
        Timestamp::At(t) => t,
        Timestamp::Now => now.get(),
    };
    // A refusal is counted by the engine (`graphite.not_stored`); the
    // protocol has no answer to carry it.
    let _ = engine.put_graphite(&metric.key, timestamp, metric.value);
}

fn bad_line(cause: PlaintextError, peer: SocketAddr, engine: &mut Engine) {
    engine.count(Event::BadGraphiteLine { cause, peer });
}

#[cfg(test)]
mod tests;
