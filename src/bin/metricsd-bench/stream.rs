//! `--server graphite`: the load is a write loop. A Graphite port never
//! answers, so nothing is waited for between lines. Closed loop, each
//! connection writes its lines `--pipeline` at a time (one write call per
//! batch) and makes the next batch as soon as the socket took the last one;
//! with `--rate R`, line `n` of connection `i` (of `C`) is run-wide line
//! `g = n * C + i`, due at `start + g / R`, as in `driver`, and written
//! once due. Each thread runs one mio loop over its share of the
//! connections; nothing is ever read from them. A connection that has sent
//! all its lines is shut down for writing at once, as an agent that is
//! done closes: a server may hold a worker for each open connection
//! (VictoriaMetrics 1.79 gives each a slot of its `-maxConcurrentInserts`,
//! four on two cores, while it waits in a read, so idle connections
//! starve busy ones).

use crate::driver::Plan;
use crate::threads::{self, Ended, ThreadError};
use crate::workload::{SplitMix64, Workload};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll};
use std::io::{self, ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Events taken per poll; the server's own figure.
const EVENTS_CAPACITY: usize = 1024;
/// Longest a thread blocks in poll: how soon it sees another thread's
/// failure and the stall timeout.
const TICK: Duration = Duration::from_millis(100);
/// Open loop: how long a thread sleeps between turns when lines come due
/// continuously. epoll's resolution; lines due meanwhile go out together
/// in the next write, which a server without answers cannot tell apart.
const OPEN_LOOP_TURN: Duration = Duration::from_millis(1);

/// What a finished stream sent.
#[derive(Debug)]
pub struct Streamed {
    /// Lines sent by each connection, by run-wide connection index.
    pub sent: Vec<u64>,
    /// When the last byte was handed to the kernel.
    pub last_write: Instant,
}

/// Why the stream stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the server closed connection {0} ({1})")]
    Closed(u64, io::Error),
    #[error("the server took no byte for {0:?} (see --timeout)")]
    Stalled(Duration),
    #[error(transparent)]
    Ended(#[from] Ended),
}

/// Streams `workload`'s puts as plaintext over `streams` from `start`
/// (connection `i` is `streams[i]`).
pub fn run(
    plan: &Plan,
    workload: &Workload,
    streams: Vec<std::net::TcpStream>,
    start: Instant,
) -> Result<Streamed, StreamError> {
    let connections = streams.len() as u64;
    let shares = threads::deal(streams, plan.threads);
    let stop = AtomicBool::new(false);
    let results: Vec<Result<Vec<ConnDone>, StreamError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let stop = &stop;
                scope.spawn(move || {
                    threads::guarded(stop, || {
                        Writer::new(plan, workload, connections, start, share, stop)?.run()
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(Ended::Panicked.into())))
            .collect()
    });
    let mut streamed = Streamed {
        sent: vec![0; connections as usize],
        last_write: start,
    };
    let mut failure = None;
    for done in results
        .into_iter()
        .filter_map(|result| threads::first_failure(result, &mut failure))
    {
        for (index, sent, last_write) in done {
            streamed.sent[index as usize] = sent;
            streamed.last_write = streamed.last_write.max(last_write);
        }
    }
    failure.map_or(Ok(streamed), Err)
}

impl ThreadError for StreamError {
    fn ended(&self) -> Option<&Ended> {
        match self {
            StreamError::Ended(ended) => Some(ended),
            _ => None,
        }
    }
}

/// A connection's run-wide index, lines sent and last write.
type ConnDone = (u64, u64, Instant);

struct Conn {
    stream: TcpStream,
    /// Run-wide index: line `n` of this connection is run-wide line
    /// `n * connections + index`.
    index: u64,
    /// Most lines this connection sends (u64::MAX with --duration).
    quota: u64,
    sent: u64,
    out: Vec<u8>,
    written: usize,
    /// The last write stopped at a full socket: wait for it to drain.
    blocked: bool,
    /// Everything is sent and the write side shut down.
    done: bool,
    last_write: Instant,
    rng: SplitMix64,
}

/// One thread's event loop.
struct Writer<'a> {
    plan: &'a Plan,
    workload: &'a Workload,
    stop: &'a AtomicBool,
    connections: u64,
    start: Instant,
    end: Option<Instant>,
    poll: Poll,
    conns: Vec<Conn>,
    /// Last time a byte was written, for the stall timeout.
    last_io: Instant,
}

impl<'a> Writer<'a> {
    fn new(
        plan: &'a Plan,
        workload: &'a Workload,
        connections: u64,
        start: Instant,
        share: Vec<(u64, std::net::TcpStream)>,
        stop: &'a AtomicBool,
    ) -> Result<Writer<'a>, StreamError> {
        let (poll, streams) = threads::poll_over(share, Interest::WRITABLE)?;
        let mut conns = Vec::with_capacity(streams.len());
        for (index, stream) in streams {
            let quota = plan.limit.quota(index, connections);
            conns.push(Conn {
                stream,
                index,
                quota,
                sent: 0,
                out: Vec::new(),
                written: 0,
                blocked: false,
                done: false,
                last_write: start,
                rng: SplitMix64::new(plan.seed, index),
            });
        }
        let end = plan.limit.end(start);
        Ok(Writer {
            plan,
            workload,
            stop,
            connections,
            start,
            end,
            poll,
            conns,
            last_io: start,
        })
    }

    fn run(mut self) -> Result<Vec<ConnDone>, StreamError> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(Ended::Stopped.into());
            }
            let mut busy = false;
            for j in 0..self.conns.len() {
                if self.conns[j].done {
                    continue;
                }
                if !self.conns[j].blocked {
                    self.pump(j)?;
                }
                if self.has_work(j, Instant::now()) {
                    busy = true;
                } else {
                    let conn = &mut self.conns[j];
                    conn.done = true;
                    // Only the peer's view changes; a failure here (it
                    // closed first) leaves what was sent as it is.
                    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                }
            }
            if !busy {
                break;
            }
            let now = Instant::now();
            if self.conns.iter().any(|c| c.written < c.out.len())
                && now.duration_since(self.last_io) > self.plan.timeout
            {
                return Err(StreamError::Stalled(self.plan.timeout));
            }
            // Closed loop, every connection with work left is blocked now
            // and its writable event wakes the loop; open loop, lines come due.
            let timeout = match self.plan.rate {
                Some(_) => OPEN_LOOP_TURN,
                None => TICK,
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(Ended::Io("poll failed", e).into());
            }
            for event in events.iter() {
                self.conns[event.token().0].blocked = false;
            }
        }
        Ok(self.conns.iter().map(|c| (c.index, c.sent, c.last_write)).collect())
    }

    /// Writes connection `j`'s lines until the socket is full or none is
    /// left to write now.
    fn pump(&mut self, j: usize) -> Result<(), StreamError> {
        loop {
            if self.conns[j].written == self.conns[j].out.len() {
                self.conns[j].out.clear();
                self.conns[j].written = 0;
                if !self.fill(j) {
                    return Ok(());
                }
            }
            let conn = &mut self.conns[j];
            match conn.stream.write(&conn.out[conn.written..]) {
                Ok(0) => return Err(Ended::Io("write", ErrorKind::WriteZero.into()).into()),
                Ok(n) => {
                    conn.written += n;
                    let now = Instant::now();
                    conn.last_write = now;
                    self.last_io = now;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    conn.blocked = true;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                    return Err(StreamError::Closed(conn.index, e))
                }
                Err(e) => return Err(Ended::Io("cannot send", e).into()),
            }
        }
    }

    /// Appends connection `j`'s next lines to its empty output: a batch
    /// (closed loop) or every line due by now (open loop). False when
    /// there is none to send now.
    fn fill(&mut self, j: usize) -> bool {
        let now = Instant::now();
        let upto = self.lines_by(&self.conns[j], now);
        let conn = &mut self.conns[j];
        let batch = match self.plan.rate {
            None => (self.plan.pipeline as u64).min(upto - conn.sent),
            Some(_) => upto - conn.sent,
        };
        for _ in 0..batch {
            let seq = conn.sent * self.connections + conn.index;
            let op = self.workload.next_op(&mut conn.rng, seq);
            self.workload.encode(op, &mut conn.out);
            conn.sent += 1;
        }
        batch > 0
    }

    /// How many lines `conn` may have sent by `now`: its quota, or none
    /// past the --duration end, or (open loop) those due by `now`.
    fn lines_by(&self, conn: &Conn, now: Instant) -> u64 {
        let until = self.end.map_or(now, |end| now.min(end));
        if self.end.is_some_and(|end| now >= end) && self.plan.rate.is_none() {
            return conn.sent;
        }
        match self.plan.rate {
            None => conn.quota,
            Some(rate) => {
                // Lines n with (n * C + index) / rate <= elapsed (strictly
                // below the end with --duration, whose `until` is the end).
                let slots = until.duration_since(self.start).as_secs_f64() * rate;
                let due = if slots < conn.index as f64 {
                    0
                } else {
                    ((slots - conn.index as f64) / self.connections as f64) as u64 + 1
                };
                due.min(conn.quota).max(conn.sent)
            }
        }
    }

    /// Whether connection `j` has anything left to send, now or later.
    fn has_work(&self, j: usize, now: Instant) -> bool {
        let conn = &self.conns[j];
        conn.written < conn.out.len()
            || (conn.sent < conn.quota && self.end.is_none_or(|end| now < end))
            || self.lines_by(conn, now) > conn.sent
    }
}
