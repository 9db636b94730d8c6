//! Where a session is in its life: one enum, shared by every protocol's
//! session and read by the connection that drives it.

/// Where a session is in its life.
///
/// ```text
///            output full, with lines or an answer left
///   Reading ───────────────────────────────────────────▶ Throttled
///      │  ◀────────── output drained, all answered ─────────┘ │
///      │ peer's end of stream          server stops │          │ server stops
///      ▼                                            ▼          ▼
///   Draining                                        Stopping ◀─┘
///      │ all sent                                   │ all answered and sent
///      ▼                                            ▼
///   Closing ◀──────── peer's end of stream ──── Lingering { dropped }
/// ```
///
/// Only Reading reads; Throttled and Stopping answer what was read as the
/// output drains. A stop in Draining stays Draining: the peer has already
/// closed its side, so there is nothing to linger for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Requests are read and answered.
    Reading,
    /// Complete requests, or the rest of a long answer, wait for the output
    /// to drain below the limit: nothing more is read until they are done.
    Throttled,
    /// The peer shut down its sending side: what was read is answered and
    /// sent, then the connection closes.
    Draining,
    /// The server is stopping, or an HTTP session answered a request
    /// after which its connection closes: nothing more is read, what was
    /// read is answered and sent, then the session lingers.
    Stopping,
    /// Stopping, all sent and our side shut down for writing: what the peer
    /// still sends is dropped until it closes. `dropped`: some was, so the
    /// peer is still sending and its end of stream is worth waiting for.
    Lingering { dropped: bool },
    /// Nothing left to do: the connection is dropped.
    Closing,
}

impl Phase {
    /// After the peer's end of stream: a reading session drains what it
    /// has, a lingering one is done.
    pub fn at_end_of_input(self) -> Phase {
        match self {
            Phase::Reading => Phase::Draining,
            Phase::Lingering { .. } => Phase::Closing,
            other => other,
        }
    }

    /// After the server began to stop, or an HTTP session's closing
    /// answer: a reading session answers no more (its incomplete request
    /// is dropped), a throttled one still answers the whole requests it has.
    pub fn at_stop(self) -> Phase {
        match self {
            Phase::Reading | Phase::Throttled => Phase::Stopping,
            other => other,
        }
    }

    /// Stopping and everything sent: the session lingers.
    pub fn lingering(self) -> Phase {
        match self {
            Phase::Stopping => Phase::Lingering { dropped: false },
            other => other,
        }
    }

    /// Lingering, the peer sent more, which was dropped.
    pub fn dropped_input(self) -> Phase {
        match self {
            Phase::Lingering { .. } => Phase::Lingering { dropped: true },
            other => other,
        }
    }
}
