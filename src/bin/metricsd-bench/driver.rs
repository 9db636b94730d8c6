//! The load itself: each thread runs one mio event loop over its share of
//! the connections, sends requests, matches every answer to its request in
//! order, checks it and records its latency.
//!
//! Closed loop (no `--rate`): a connection sends `--pipeline` requests at
//! once and the next batch when all of them are answered, as
//! redis-benchmark's `-P` does; latency runs from the batch's send.
//!
//! Open loop (`--rate R`): run-wide request `g` is due at `start + g / R`,
//! and request `n` of connection `i` (of `C`) is `g = n * C + i`, so arrivals
//! are evenly spread over connections and time whatever the server does. A
//! connection holds at most `--pipeline` requests unanswered; a due request
//! beyond that waits for an answer, and its latency still runs from its due
//! time, so a stalled server shows in the tail instead of slowing the
//! arrivals (no coordinated omission).

use crate::histogram::Histogram;
use crate::threads::{self, Ended, ThreadError};
use crate::workload::{Feed, Framer, Op, SplitMix64, Verdict, Workload};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// Bytes taken per read: a pipeline of 16 gets of 100 points (about 40 KB
/// of answers) arrives in one read.
const READ_CHUNK: usize = 64 * 1024;
/// Events taken per poll; the server's own figure (more wait a turn).
const EVENTS_CAPACITY: usize = 1024;
/// Longest a thread blocks in poll: how soon it sees another thread's
/// failure, the stall timeout and the time to publish progress.
const TICK: Duration = Duration::from_millis(100);
/// epoll waits in whole milliseconds (mio rounds shorter timeouts up to
/// one), so when the next open-loop request is due sooner than this the
/// loop polls without blocking, to send within microseconds of its due
/// time. With `--rate` above about 1,000/s a thread thus keeps a core busy.
const SPIN_BELOW: Duration = Duration::from_millis(1);
/// How often threads publish their latencies for the progress line, which
/// is printed once a second: at most this stale.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);
/// How often the progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Bytes of a wrong answer quoted in the error message.
const EXCERPT_BYTES: usize = 120;

/// When a run stops sending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// After this many requests in all.
    Requests(u64),
    /// No request is sent (closed loop) or due (open loop) this long after
    /// the start; those in flight are still awaited and counted.
    Duration(Duration),
}

impl Limit {
    /// Most requests connection `index` of `connections` sends: those `n`
    /// with `n * connections + index` below the total (u64::MAX for a
    /// duration).
    pub fn quota(self, index: u64, connections: u64) -> u64 {
        match self {
            Limit::Requests(total) => total.saturating_sub(index).div_ceil(connections),
            Limit::Duration(_) => u64::MAX,
        }
    }

    /// When sending stops, for a run started at `start`.
    pub fn end(self, start: Instant) -> Option<Instant> {
        match self {
            Limit::Duration(d) => Some(start + d),
            Limit::Requests(_) => None,
        }
    }
}

/// How to drive the load.
#[derive(Debug, Clone)]
pub struct Plan {
    pub threads: usize,
    pub pipeline: usize,
    pub limit: Limit,
    /// Requests per second over all connections (open loop), or None.
    pub rate: Option<f64>,
    /// A run with requests unanswered and no byte moving for this long fails.
    pub timeout: Duration,
    pub seed: u64,
}

/// What a finished run measured.
#[derive(Debug, Default)]
pub struct Totals {
    /// Answers received, `error` answers included.
    pub requests: u64,
    /// `error` answers.
    pub errors: u64,
    /// From the start to the last answer.
    pub elapsed: Duration,
    pub latency: Histogram,
}

/// Why a run stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("wrong answer to {request:?} on connection {conn}: {reason} (the answer began {excerpt:?})")]
    WrongAnswer {
        conn: u64,
        request: String,
        reason: String,
        excerpt: String,
    },
    #[error("connection {conn} received bytes while no request was waiting: {excerpt:?}")]
    Unsolicited { conn: u64, excerpt: String },
    #[error("the server closed connection {conn} with {outstanding} requests unanswered")]
    Closed { conn: u64, outstanding: usize },
    #[error("no answer from the server for {0:?} with {1} requests unanswered (see --timeout)")]
    Stalled(Duration, usize),
    #[error(transparent)]
    Ended(#[from] Ended),
}

impl ThreadError for RunError {
    fn ended(&self) -> Option<&Ended> {
        match self {
            RunError::Ended(ended) => Some(ended),
            _ => None,
        }
    }
}

/// What threads share while running.
struct Shared {
    stop: AtomicBool,
    /// Whether to publish progress at all.
    publish: bool,
    /// Each thread's answers and latencies so far, for the progress line.
    snapshots: Vec<Mutex<(u64, Histogram)>>,
}

/// Runs the load over `streams` (connection `i` is `streams[i]`). Calls
/// `progress` once a second with the time since the start, the answers so
/// far and their latencies, when `show_progress` is set.
pub fn run(
    plan: &Plan,
    workload: &Workload,
    streams: Vec<std::net::TcpStream>,
    show_progress: bool,
    mut progress: impl FnMut(Duration, u64, &Histogram),
) -> Result<Totals, RunError> {
    let connections = streams.len() as u64;
    // Connection i goes to thread i % threads: then each thread's open-loop
    // arrivals are in ascending run-wide order (see Schedule).
    let shares = threads::deal(streams, plan.threads);
    let shared = Shared {
        stop: AtomicBool::new(false),
        publish: show_progress,
        snapshots: (0..plan.threads).map(|_| Mutex::default()).collect(),
    };
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for (thread, share) in shares.into_iter().enumerate() {
            let (tx, shared) = (tx.clone(), &shared);
            scope.spawn(move || {
                let result = threads::guarded(&shared.stop, || {
                    Worker::new(plan, workload, connections, start, share, thread, shared)?.run()
                });
                // The receiver waits for every thread: sending cannot fail.
                let _ = tx.send(result);
            });
        }
        drop(tx);
        let mut totals = Totals::default();
        let mut last_answer = start;
        let mut failure = None;
        let mut next_progress = start + PROGRESS_EVERY;
        loop {
            let wait = next_progress.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(result) => {
                    if let Some(done) = threads::first_failure(result, &mut failure) {
                        totals.requests += done.requests;
                        totals.errors += done.errors;
                        totals.latency.merge(&done.latency);
                        last_answer = last_answer.max(done.last_answer.unwrap_or(start));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    next_progress += PROGRESS_EVERY;
                    if show_progress && failure.is_none() {
                        let mut sum = Histogram::new();
                        let mut requests = 0;
                        for snapshot in &shared.snapshots {
                            let snapshot = snapshot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                            requests += snapshot.0;
                            sum.merge(&snapshot.1);
                        }
                        progress(start.elapsed(), requests, &sum);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        totals.elapsed = last_answer - start;
        failure.map_or(Ok(totals), Err)
    })
}

/// One request awaiting its answer.
struct InFlight {
    op: Op,
    /// When it was sent (closed loop) or due (open loop).
    since: Instant,
}

struct Conn {
    stream: TcpStream,
    /// Run-wide index: request `n` of this connection is run-wide request
    /// `n * connections + index`.
    index: u64,
    /// Most requests this connection sends (u64::MAX with --duration).
    quota: u64,
    sent: u64,
    /// Open loop: requests that have come due.
    due: u64,
    out: Vec<u8>,
    written: usize,
    input: Vec<u8>,
    framer: Framer,
    in_flight: VecDeque<InFlight>,
    rng: SplitMix64,
    /// A realistic mix's series this connection puts to.
    feed: Option<Feed>,
}

/// Open loop: which request comes due next, in run-wide order.
struct Schedule {
    /// Nanoseconds between two run-wide requests: 1e9 / --rate.
    interval_ns: f64,
    /// The next request to come due is request `round` of local connection
    /// `next`.
    round: u64,
    next: usize,
    /// No more requests come due.
    exhausted: bool,
}

/// One thread's event loop and what it measured.
struct Worker<'a> {
    plan: &'a Plan,
    workload: &'a Workload,
    shared: &'a Shared,
    thread: usize,
    connections: u64,
    start: Instant,
    end: Option<Instant>,
    poll: Poll,
    conns: Vec<Conn>,
    schedule: Option<Schedule>,
    scratch: Box<[u8]>,
    latency: Histogram,
    requests: u64,
    errors: u64,
    last_answer: Option<Instant>,
    /// Requests sent and not yet answered, over all connections: keeps the
    /// per-turn checks O(1) while the run is busy.
    outstanding: usize,
    /// Open loop: connections that came due this turn (reused buffer).
    touched: Vec<usize>,
    /// Last time a byte was read or written.
    last_io: Instant,
    next_publish: Instant,
}

/// What one thread hands back.
struct Done {
    requests: u64,
    errors: u64,
    latency: Histogram,
    last_answer: Option<Instant>,
}

impl<'a> Worker<'a> {
    fn new(
        plan: &'a Plan,
        workload: &'a Workload,
        connections: u64,
        start: Instant,
        share: Vec<(u64, std::net::TcpStream)>,
        thread: usize,
        shared: &'a Shared,
    ) -> Result<Worker<'a>, RunError> {
        let (poll, streams) = threads::poll_over(share, Interest::READABLE | Interest::WRITABLE)?;
        let mut conns = Vec::with_capacity(streams.len());
        for (index, stream) in streams {
            let quota = plan.limit.quota(index, connections);
            conns.push(Conn {
                stream,
                index,
                quota,
                sent: 0,
                due: 0,
                out: Vec::new(),
                written: 0,
                input: Vec::new(),
                framer: workload.framer(),
                in_flight: VecDeque::new(),
                rng: SplitMix64::new(plan.seed, index),
                feed: workload.feed(index, plan.seed),
            });
        }
        let end = plan.limit.end(start);
        Ok(Worker {
            plan,
            workload,
            shared,
            thread,
            connections,
            start,
            end,
            poll,
            schedule: plan.rate.map(|rate| Schedule {
                interval_ns: 1e9 / rate,
                round: 0,
                next: 0,
                exhausted: conns.is_empty(),
            }),
            conns,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            latency: Histogram::new(),
            requests: 0,
            errors: 0,
            last_answer: None,
            outstanding: 0,
            touched: Vec::new(),
            last_io: start,
            next_publish: start + PUBLISH_EVERY,
        })
    }

    fn run(mut self) -> Result<Done, RunError> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        if self.schedule.is_none() {
            for j in 0..self.conns.len() {
                self.send_batch(j)?;
            }
        }
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Err(Ended::Stopped.into());
            }
            let now = Instant::now();
            if self.schedule.is_some() {
                self.come_due(now)?;
            }
            if self.finished(now) {
                break;
            }
            self.check_stall(now)?;
            self.publish(now);
            let timeout = self.poll_timeout(now);
            if timeout.is_zero() {
                // Spinning until a request is due: give way to the server
                // when it shares this core.
                std::thread::yield_now();
            }
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(Ended::Io("poll failed", e).into());
            }
            for event in events.iter() {
                let j = event.token().0;
                self.receive(j)?;
                self.refill(j)?;
            }
        }
        Ok(Done {
            requests: self.requests,
            errors: self.errors,
            latency: self.latency,
            last_answer: self.last_answer,
        })
    }

    /// How long the next poll may block.
    fn poll_timeout(&self, now: Instant) -> Duration {
        match &self.schedule {
            Some(s) if !s.exhausted => {
                let until = self
                    .due_time(s.round, &self.conns[s.next])
                    .saturating_duration_since(now);
                if until < SPIN_BELOW {
                    Duration::ZERO
                } else {
                    // Whole milliseconds, rounded down: wake at or before the due time.
                    Duration::from_millis(until.as_millis().min(TICK.as_millis()) as u64)
                }
            }
            _ => TICK,
        }
    }

    /// The due time of request `round` of `conn` (open loop).
    fn due_time(&self, round: u64, conn: &Conn) -> Instant {
        let interval_ns = self.schedule.as_ref().map_or(0.0, |s| s.interval_ns);
        let g = round * self.connections + conn.index;
        self.start + Duration::from_nanos((g as f64 * interval_ns) as u64)
    }

    /// Open loop: marks the requests due by `now` and sends what may go.
    fn come_due(&mut self, now: Instant) -> Result<(), RunError> {
        let Some(s) = &self.schedule else { return Ok(()) };
        let (mut round, mut next, mut exhausted) = (s.round, s.next, s.exhausted);
        self.touched.clear();
        while !exhausted {
            let conn = &self.conns[next];
            let at = self.due_time(round, conn);
            // Run-wide order ascends through rounds and connections, so the
            // first request past the limit ends the schedule.
            if round >= conn.quota || self.end.is_some_and(|end| at >= end) {
                exhausted = true;
                break;
            }
            if at > now {
                break;
            }
            let conn = &mut self.conns[next];
            // A connection with requests already waiting was touched earlier
            // this turn, or sends when an answer frees its pipeline.
            if conn.sent == conn.due {
                self.touched.push(next);
            }
            conn.due = round + 1;
            next += 1;
            if next == self.conns.len() {
                next = 0;
                round += 1;
            }
        }
        if let Some(s) = &mut self.schedule {
            (s.round, s.next, s.exhausted) = (round, next, exhausted);
        }
        for k in 0..self.touched.len() {
            self.send_due(self.touched[k])?;
        }
        Ok(())
    }

    /// Sends what connection `j` may send now, and writes what is pending.
    fn refill(&mut self, j: usize) -> Result<(), RunError> {
        match &self.schedule {
            None => self.send_batch(j),
            Some(_) => self.send_due(j),
        }
    }

    /// Closed loop: the next batch, once the last one is all answered.
    fn send_batch(&mut self, j: usize) -> Result<(), RunError> {
        let conn = &mut self.conns[j];
        // Called on every event: the clock is read only once the last batch
        // is all answered.
        if conn.in_flight.is_empty() {
            let now = Instant::now();
            if self.end.is_none_or(|end| now < end) {
                let batch = (self.plan.pipeline as u64).min(conn.quota - conn.sent);
                for _ in 0..batch {
                    queue(self.workload, self.connections, conn, now);
                }
                self.outstanding += batch as usize;
            }
        }
        self.flush(j)
    }

    /// Open loop: every due request the pipeline has room for.
    fn send_due(&mut self, j: usize) -> Result<(), RunError> {
        while self.conns[j].sent < self.conns[j].due && self.conns[j].in_flight.len() < self.plan.pipeline {
            let due = self.due_time(self.conns[j].sent, &self.conns[j]);
            queue(self.workload, self.connections, &mut self.conns[j], due);
            self.outstanding += 1;
        }
        self.flush(j)
    }

    /// Writes connection `j`'s pending output until done or the socket is full.
    fn flush(&mut self, j: usize) -> Result<(), RunError> {
        let conn = &mut self.conns[j];
        while conn.written < conn.out.len() {
            match conn.stream.write(&conn.out[conn.written..]) {
                Ok(0) => return Err(Ended::Io("write", ErrorKind::WriteZero.into()).into()),
                Ok(n) => {
                    conn.written += n;
                    self.last_io = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Ended::Io("cannot send", e).into()),
            }
        }
        conn.out.clear();
        conn.written = 0;
        Ok(())
    }

    /// Reads connection `j` until the socket is drained (mio's readiness is
    /// edge-triggered) and takes every complete answer.
    fn receive(&mut self, j: usize) -> Result<(), RunError> {
        loop {
            match self.conns[j].stream.read(&mut self.scratch) {
                Ok(0) => {
                    let conn = &self.conns[j];
                    if conn.in_flight.is_empty() && !self.more_to_send(conn, Instant::now()) {
                        return Ok(());
                    }
                    return Err(RunError::Closed {
                        conn: conn.index,
                        outstanding: conn.in_flight.len(),
                    });
                }
                Ok(n) => {
                    let at = Instant::now();
                    self.last_io = at;
                    self.conns[j].input.extend_from_slice(&self.scratch[..n]);
                    self.take_answers(j, at)?;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Ended::Io("cannot receive", e).into()),
            }
        }
    }

    /// Checks and counts the complete answers in connection `j`'s input,
    /// received at `at`.
    fn take_answers(&mut self, j: usize, at: Instant) -> Result<(), RunError> {
        let conn = &mut self.conns[j];
        let mut used = 0;
        loop {
            let len = match conn.framer.next(&conn.input[used..]) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                // Bytes no answer begins with stop the run at once, not
                // after the stall timeout.
                Err(reason) => {
                    let bytes = &conn.input[used..];
                    return Err(match conn.in_flight.front() {
                        Some(next) => wrong_answer(conn, self.workload, next.op, reason, bytes),
                        None => unsolicited(conn, bytes),
                    });
                }
            };
            let answer = &conn.input[used..used + len];
            let Some(request) = conn.in_flight.pop_front() else {
                return Err(unsolicited(conn, answer));
            };
            match self.workload.check(request.op, answer) {
                Ok(Verdict::Ok) => {}
                Ok(Verdict::Error) => self.errors += 1,
                Err(reason) => return Err(wrong_answer(conn, self.workload, request.op, reason, answer)),
            }
            self.latency
                .record_duration(at.saturating_duration_since(request.since));
            self.requests += 1;
            self.outstanding -= 1;
            used += len;
        }
        conn.input.drain(..used);
        if !conn.input.is_empty() && conn.in_flight.is_empty() {
            return Err(unsolicited(conn, &conn.input));
        }
        if used > 0 {
            self.last_answer = Some(at);
        }
        Ok(())
    }

    /// Whether every connection has sent all it will and has its answers.
    fn finished(&self, now: Instant) -> bool {
        self.outstanding == 0
            && self
                .conns
                .iter()
                .all(|c| c.in_flight.is_empty() && c.written == c.out.len() && !self.more_to_send(c, now))
    }

    /// Whether `conn` has requests left to send, now or later.
    fn more_to_send(&self, conn: &Conn, now: Instant) -> bool {
        conn.sent < conn.quota
            && match &self.schedule {
                Some(s) => !s.exhausted || conn.sent < conn.due,
                None => self.end.is_none_or(|end| now < end),
            }
    }

    /// Fails the run when requests wait and nothing has moved for --timeout.
    fn check_stall(&self, now: Instant) -> Result<(), RunError> {
        if self.outstanding > 0 && now.duration_since(self.last_io) > self.plan.timeout {
            return Err(RunError::Stalled(self.plan.timeout, self.outstanding));
        }
        Ok(())
    }

    /// Copies this thread's figures for the progress line, now and then.
    fn publish(&mut self, now: Instant) {
        if !self.shared.publish || now < self.next_publish {
            return;
        }
        self.next_publish = now + PUBLISH_EVERY;
        let mut snapshot = self.shared.snapshots[self.thread]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        snapshot.0 = self.requests;
        snapshot.1.clone_from(&self.latency);
    }
}

/// Encodes connection `conn`'s next request and remembers it, as sent or
/// due at `since`.
fn queue(workload: &Workload, connections: u64, conn: &mut Conn, since: Instant) {
    let seq = conn.sent * connections + conn.index;
    let op = match &mut conn.feed {
        Some(feed) => feed.next_op(),
        None => workload.next_op(&mut conn.rng, seq),
    };
    workload.encode(op, &mut conn.out);
    conn.in_flight.push_back(InFlight { op, since });
    conn.sent += 1;
}

fn wrong_answer(conn: &Conn, workload: &Workload, op: Op, reason: String, answer: &[u8]) -> RunError {
    RunError::WrongAnswer {
        conn: conn.index,
        request: workload.describe(op),
        reason,
        excerpt: excerpt(answer),
    }
}

fn unsolicited(conn: &Conn, bytes: &[u8]) -> RunError {
    RunError::Unsolicited {
        conn: conn.index,
        excerpt: excerpt(bytes),
    }
}

/// The start of `bytes`, for an error message.
fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT_BYTES)]).into_owned()
}
