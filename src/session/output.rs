//! A session's answer bytes, for the connection to send.

use super::bounds::RETAIN_BUFFER_BYTES;

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

    /// Where answers are appended.
    #[inline]
    pub(super) fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes in the buffer, sent or not.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Holds everything from `at` on until the turn's commit.
    #[inline]
    pub(super) fn hold_from(&mut self, at: usize) {
        self.held_from.get_or_insert(at);
    }

    /// Stops holding; returns where the held output began.
    pub(super) fn release(&mut self) -> Option<usize> {
        self.held_from.take()
    }

    /// Moves unsent output to the front before more is appended, and
    /// returns by how much it moved. Output is only appended while under
    /// the limit, so this moves at most that much, once per turn.
    pub(super) fn compact(&mut self) -> usize {
        let written = std::mem::take(&mut self.written);
        if written > 0 {
            self.buf.drain(..written);
            if let Some(from) = &mut self.held_from {
                *from -= written;
            }
        }
        written
    }

    pub(super) fn take_taken(&mut self) -> bool {
        std::mem::take(&mut self.taken)
    }
}
