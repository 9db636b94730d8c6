//! What the two loads (`driver`, which waits for answers, and `stream`,
//! which only writes) do alike with their threads: deal the connections
//! out, and run each thread's share so that a panic or a failure stops the
//! others and the first failure is the one reported.

use mio::net::TcpStream;
use mio::{Interest, Poll, Token};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

/// How a load's thread ended early for reasons both loads share; each
/// load's error holds it beside its own reasons.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    #[error("{0}: {1}")]
    Io(&'static str, io::Error),
    #[error("a load thread panicked")]
    Panicked,
    /// Another thread failed; its error is the one reported.
    #[error("stopped")]
    Stopped,
}

/// A load's error: its own reasons, or [`Ended`].
pub trait ThreadError: From<Ended> {
    /// The shared reason, if it is one.
    fn ended(&self) -> Option<&Ended>;
}

/// Connection `i` to thread `i % threads`, each with its run-wide index.
pub fn deal(streams: Vec<std::net::TcpStream>, threads: usize) -> Vec<Vec<(u64, std::net::TcpStream)>> {
    let mut shares: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, stream) in streams.into_iter().enumerate() {
        shares[i % threads].push((i as u64, stream));
    }
    shares
}

/// A poll over a thread's `share`, each connection made non-blocking and
/// registered for `interest` with its place in the share as its token;
/// the connections with their run-wide indexes, in that order.
pub fn poll_over(
    share: Vec<(u64, std::net::TcpStream)>,
    interest: Interest,
) -> Result<(Poll, Vec<(u64, TcpStream)>), Ended> {
    let poll = Poll::new().map_err(|e| Ended::Io("cannot create a poll", e))?;
    let mut streams = Vec::with_capacity(share.len());
    for (local, (index, stream)) in share.into_iter().enumerate() {
        let mut stream = TcpStream::from_std(stream);
        poll.registry()
            .register(&mut stream, Token(local), interest)
            .map_err(|e| Ended::Io("cannot register a connection", e))?;
        streams.push((index, stream));
    }
    Ok((poll, streams))
}

/// Runs one thread's `work`: a panic becomes [`Ended::Panicked`], and any
/// failure raises `stop`, which the other threads watch.
pub fn guarded<T, E: ThreadError>(stop: &AtomicBool, work: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let result = catch_unwind(AssertUnwindSafe(work)).unwrap_or(Err(Ended::Panicked.into()));
    if result.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    result
}

/// Keeps `result`'s error in `failure` unless one is there already or it is
/// a stop; returns the success.
pub fn first_failure<T, E: ThreadError>(result: Result<T, E>, failure: &mut Option<E>) -> Option<T> {
    match result {
        Ok(done) => Some(done),
        Err(e) if matches!(e.ended(), Some(Ended::Stopped)) => None,
        Err(e) => {
            failure.get_or_insert(e);
            None
        }
    }
}
