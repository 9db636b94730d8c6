//! The limits on one session's memory and work, the same for every
//! protocol.

/// Buffers are kept for reuse once empty, shrunk to this capacity when a
/// big `get` answer or a long line left them larger, so that an idle
/// connection pins no more. 4 KiB holds a typical pipelined batch of
/// answers or requests. (Shrunk, not freed: a buffer that grew from empty
/// by doubling from its first few bytes passes 4 KiB at odd sizes, 4,352
/// for a 3.2 KB answer, and freeing it cost every `get` of 100 points nine
/// reallocations, 1,400 instructions.)
pub(super) const RETAIN_BUFFER_BYTES: usize = 4096;

/// Answer bytes one session may produce in one turn. 256 KiB is about
/// 10,000 point lines, a fraction of a millisecond of formatting, so a `get`
/// of millions of points is written in slices with every other ready
/// connection served between them.
pub const ANSWER_SLICE_BYTES: usize = 256 * 1024;

/// Unsent answer bytes a session may always have, even when all
/// connections' output together has reached `--max-output-memory`: short
/// answers (every `put`, `delete` and `stats`, and a `get` of up to about
/// 2,000 points) are never held up by other connections' big ones, and a
/// client that reads keeps getting even a long answer, this much at a time.
/// 64 KiB is the size of one read of requests (`READ_SCRATCH_BYTES`), so a
/// peer that fills it costs no more than its requests already do, and
/// 10,000 connections (the default cap) add at most 640 MiB to the bound.
pub const ALWAYS_ALLOWED_OUTPUT_BYTES: usize = 64 * 1024;

/// Per-connection bounds on memory and work, the same for every protocol.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest request line, without its `\n`.
    pub max_line_bytes: usize,
    /// Output above which a connection's requests are no longer read.
    pub max_pending_output: usize,
}
