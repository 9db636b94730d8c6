//! How many answer bytes a session may add now: the same rule for every
//! protocol that answers, so that all of them share `--max-output-memory`
//! and the per-call slice alike.

use super::bounds::{Limits, ALWAYS_ALLOWED_OUTPUT_BYTES, ANSWER_SLICE_BYTES};
use crate::engine::Engine;

/// A session's answer budget for one service call.
#[derive(Debug, Default)]
pub struct Budget {
    /// Answer bytes this service call may still produce.
    slice_left: usize,
    /// Of the room left under `--max-output-memory` when this service call
    /// began, what this session has not used.
    shared_left: usize,
}

impl Budget {
    /// A fresh budget at the start of a service call.
    pub fn begin(&mut self, engine: &Engine) {
        self.slice_left = ANSWER_SLICE_BYTES;
        self.shared_left = engine.output_room();
    }

    /// How many answer bytes may be added now, with `pending` unsent: under
    /// the connection's output limit, within this call's slice, and within
    /// the room all connections share, unless the output is short.
    pub fn room(&self, pending: usize, limits: &Limits) -> usize {
        let always = ALWAYS_ALLOWED_OUTPUT_BYTES.saturating_sub(pending);
        self.own_room(pending, limits).min(self.shared_left.max(always))
    }

    /// The room under the connection's own limits alone.
    fn own_room(&self, pending: usize, limits: &Limits) -> usize {
        limits.max_pending_output.saturating_sub(pending).min(self.slice_left)
    }

    /// Whether there is no room only because all connections' output has
    /// reached `--max-output-memory`.
    pub fn waits_for_shared_room(&self, pending: usize, limits: &Limits) -> bool {
        self.room(pending, limits) == 0 && self.own_room(pending, limits) > 0
    }

    /// Whether all connections' output and held answers were under
    /// `--max-output-memory` when this call began, less what it added: an
    /// answer that holds memory until it is read (an HTTP `/render`) starts
    /// only then.
    pub fn has_shared_room(&self) -> bool {
        self.shared_left > 0
    }

    /// Records `n` bytes an unfinished answer holds to write the rest: they
    /// count against the shared room but not against this call's slice.
    pub fn held(&mut self, n: usize) {
        self.shared_left = self.shared_left.saturating_sub(n);
    }

    /// Records `n` answer bytes produced in this call.
    pub fn produced(&mut self, n: usize) {
        self.slice_left = self.slice_left.saturating_sub(n);
        self.shared_left = self.shared_left.saturating_sub(n);
    }
}
