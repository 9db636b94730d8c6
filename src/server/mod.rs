//! The server: one thread, one `mio::Poll`, typed listeners (the course
//! protocol's, and Graphite's TCP listener and UDP socket when asked for)
//! and a slab of connections keyed by their poll token.
//!
//! Each loop turn polls, records readiness on the connections it names, and
//! then services every connection that has work, each for one bounded slice
//! (see `Connection::service`). A connection with more work than its slice
//! goes back in the queue for the next turn, which then polls without
//! blocking, so new events and other connections are served in between.
//!
//! A durable server ends every turn with a commit: the turn's puts go to the
//! log in one write (see [`crate::journal`]), and only then are their
//! answers sent. Between turns the journal also moves a compaction along.
//!
//! Stopping (a [`Handle::shutdown`], or SIGINT/SIGTERM in the binary) is
//! graceful: the listener closes, nothing more is read, what was read is
//! answered and sent for up to [`SHUTDOWN_GRACE`], and the log is synced.

mod connection;
mod udp;

use crate::engine::{Engine, Event};
use crate::journal;
use crate::rate_limit::RateLimitedWarning;
use crate::session::Protocol;
use crate::store::{Policy, Store};
use connection::{Connection, Next};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use udp::GraphiteUdp;

pub use crate::config::{DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_PENDING_OUTPUT};

/// Bytes read from one connection in one turn, and the size of the one read
/// buffer all connections share. 64 KiB takes a deep pipeline's burst in one
/// syscall (about 2,000 puts) while bounding one connection's slice of a turn
/// to well under a millisecond of work.
const READ_SCRATCH_BYTES: usize = 64 * 1024;
/// Events taken per poll; more simply wait for the next turn.
const EVENTS_CAPACITY: usize = 1024;
/// Connections accepted per turn before serving the ones already open, so an
/// accept storm cannot starve them.
const MAX_ACCEPTS_PER_TURN: usize = 256;
/// How long to stop accepting after an accept error that a retry would only
/// repeat (out of file descriptors with no spare to shed with, ENOBUFS).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a stopping server goes on answering what it has read and
/// sending answers before it exits anyway: "a few seconds", long enough for
/// any peer that reads, short enough for a service manager's stop timeout
/// (systemd's default is 90 s, Docker's 10 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How often an idle loop looks whether a snapshot finished off the loop.
const COMPACTION_POLL: Duration = Duration::from_millis(100);
/// How often an expiry pass starts under `--retention`: timestamps are
/// whole seconds, so the horizon moves once a second.
const EXPIRE_INTERVAL: Duration = Duration::from_secs(1);
/// How often the loop does its chores: is the data directory still there,
/// and the counts of warnings held back. Once a second is what the contract
/// promises for noticing a removed data directory (`--fsync always` also
/// looks before each write) and the interval of the rate-limited warnings,
/// and costs an idle server one wakeup and two `stat`s a second.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const GRAPHITE_LISTENER: Token = Token(2);
const GRAPHITE_UDP: Token = Token(3);
const HTTP_LISTENER: Token = Token(4);
/// Connection tokens are slab keys offset past the fixed tokens: the waker,
/// each protocol's listener and the datagram sockets. 16 leaves room for
/// the protocols to come without moving the connections' tokens again.
const FIRST_CONNECTION: usize = 16;

pub use crate::session::Limits;
use crate::session::ANSWER_SLICE_BYTES;

/// Everything the server is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
    pub limits: Limits,
    /// Connections above this are accepted and closed at once.
    pub max_connections: usize,
    /// All connections' unsent answer bytes together: past it, long answers
    /// wait (see `session`).
    pub max_output_memory: usize,
    /// Where puts are made durable; None keeps everything in memory only.
    pub storage: Option<journal::Options>,
    /// Connections that neither send a whole request nor take answer bytes
    /// for this long are closed (a peer stuck in the middle of a line counts
    /// as silent). None: never.
    pub idle_timeout: Option<Duration>,
    /// Store the server's own figures as series this often. None: never.
    pub self_metrics: Option<SelfMetrics>,
    /// What the store keeps: retention and memory limit.
    pub store: Policy,
    /// Where to take Graphite plaintext lines, over TCP and UDP on the same
    /// port (`host:port`; port 0 picks a port free for both). None: nowhere.
    pub graphite_listen: Option<String>,
    /// Where to serve the HTTP API and the page (`--http-listen`); None: nowhere.
    pub http_listen: Option<String>,
}

/// `--self-metrics-interval` and `--self-metrics-prefix`.
#[derive(Debug, Clone)]
pub struct SelfMetrics {
    pub interval: Duration,
    /// Put before each figure's name: `metricsd.` gives `metricsd.points`.
    pub prefix: String,
}

pub use crate::config::DEFAULT_SELF_METRICS_PREFIX;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.to_owned(),
            limits: Limits {
                max_line_bytes: DEFAULT_MAX_LINE_BYTES,
                max_pending_output: DEFAULT_MAX_PENDING_OUTPUT,
            },
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_output_memory: crate::config::DEFAULT_MAX_OUTPUT_MEMORY,
            storage: None,
            idle_timeout: crate::config::DEFAULT_IDLE_TIMEOUT,
            self_metrics: None,
            graphite_listen: crate::config::DEFAULT_GRAPHITE_LISTEN.map(str::to_owned),
            http_listen: None,
            store: Policy::default(),
        }
    }
}

/// Why a server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Data(#[from] journal::Error),
    #[error("cannot listen on {listen}: {source}")]
    Listen { listen: String, source: io::Error },
    #[error("cannot listen for graphite on {listen}: {source}")]
    GraphiteListen { listen: String, source: io::Error },
    #[error("cannot set up the event loop: {0}")]
    Poll(io::Error),
}

/// Stops a running server from another thread.
#[derive(Clone)]
pub struct Handle {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Handle {
    /// Asks the server to stop; [`Server::run`] returns soon after.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            log::error!("cannot wake the event loop: {e}");
        }
    }
}

/// A bound, not yet running server.
///
/// ```no_run
/// use metricsd::server::{Config, Server};
/// let server = Server::bind(Config { listen: "127.0.0.1:0".into(), ..Config::default() })?;
/// println!("listening on {}", server.local_addr());
/// server.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    poll: Poll,
    /// Emptied once stopping began.
    listeners: Vec<Listener>,
    local_addr: SocketAddr,
    /// Graphite's UDP socket; None without `graphite_listen` or once
    /// stopping began.
    graphite_udp: Option<GraphiteUdp>,
    graphite_addr: Option<SocketAddr>,
    /// The HTTP API's address; None without `http_listen`.
    http_addr: Option<SocketAddr>,
    connections: Slab<Connection>,
    engine: Engine,
    /// Connections whose answers wait for this turn's commit.
    held: Vec<usize>,
    /// The journal has a snapshot to write: come back without waiting.
    compacting: bool,
    /// Set once stopping began: the time to exit at the latest.
    stopping: Option<Instant>,
    /// When this loop turn began (after the poll returned).
    now: Instant,
    idle_timeout: Option<Duration>,
    next_idle_sweep: Option<Instant>,
    self_metrics: Option<SelfMetrics>,
    next_self_metrics: Option<Instant>,
    /// When the next expiry pass starts (None without a retention).
    next_expiry: Option<Instant>,
    /// An expiry pass is under way: come back without waiting.
    expiring: bool,
    /// When the chores are next due.
    next_housekeeping: Instant,
    limits: Limits,
    max_connections: usize,
    scratch: Box<[u8]>,
    /// Connections with work for the next turn (slab keys).
    ready: Vec<usize>,
    /// Connections with work waiting for room under `--max-output-memory`,
    /// oldest first: each turn that ends with room, the first ones are
    /// served again, and those still without room join the back.
    waiting: VecDeque<usize>,
    /// A descriptor held in reserve: when `accept` fails for lack of
    /// descriptors, closing it lets one waiting connection be accepted and
    /// closed at once, so the peer is told instead of left hanging and the
    /// backlog drains instead of spinning the loop.
    spare_fd: Option<File>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    warn_full: RateLimitedWarning,
    warn_accept: RateLimitedWarning,
}

/// A listening socket and the protocol its connections speak; each
/// protocol's listener has a token of its own.
struct Listener {
    socket: TcpListener,
    token: Token,
    protocol: Protocol,
    accept: Accept,
}

/// Whether a listener is worth an `accept` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accept {
    /// Connections may be waiting: accept this turn.
    Ready,
    /// The backlog was empty: wait for the poll to report more.
    Waiting,
    /// An accept failed in a way a retry would only repeat: none until then.
    PausedUntil(Instant),
}

impl Server {
    /// Loads the data directory (when durable) and binds the listening
    /// socket. Limits of zero are refused: with no room for output or lines,
    /// connections could never make progress.
    pub fn bind(config: Config) -> Result<Server, StartError> {
        let limits = &config.limits;
        if limits.max_line_bytes == 0 || limits.max_pending_output == 0 || config.max_connections == 0 {
            return Err(StartError::Invalid("limits must be at least 1"));
        }
        let store = Store::with_policy(config.store, crate::clock::unix_now());
        let mut engine = match &config.storage {
            None => Engine::in_memory(store),
            Some(options) => Engine::open_into(options, store)?,
        };
        engine.limit_output(config.max_output_memory);
        let listen_error = |source| StartError::Listen {
            listen: config.listen.clone(),
            source,
        };
        let mut listener = bind_first(&config.listen).map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        let poll = Poll::new().map_err(StartError::Poll)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(StartError::Poll)?;
        let mut listeners = vec![Listener {
            socket: listener,
            token: LISTENER,
            protocol: Protocol::Course,
            accept: Accept::Ready,
        }];
        let mut graphite_udp = None;
        if let Some(listen) = &config.graphite_listen {
            let graphite_error = |source| StartError::GraphiteListen {
                listen: listen.clone(),
                source,
            };
            let (mut tcp, mut udp) = bind_tcp_and_udp(listen).map_err(graphite_error)?;
            let registry = poll.registry();
            registry
                .register(&mut tcp, GRAPHITE_LISTENER, Interest::READABLE)
                .map_err(StartError::Poll)?;
            udp.register(registry, GRAPHITE_UDP).map_err(StartError::Poll)?;
            listeners.push(Listener {
                socket: tcp,
                token: GRAPHITE_LISTENER,
                protocol: Protocol::Graphite,
                accept: Accept::Ready,
            });
            graphite_udp = Some(udp);
        }
        let graphite_addr = graphite_udp.as_ref().map(GraphiteUdp::local_addr);
        let mut http_addr = None;
        if let Some(listen) = &config.http_listen {
            let http_error = |source| StartError::Listen {
                listen: listen.clone(),
                source,
            };
            let mut socket = bind_first(listen).map_err(http_error)?;
            http_addr = Some(socket.local_addr().map_err(http_error)?);
            poll.registry()
                .register(&mut socket, HTTP_LISTENER, Interest::READABLE)
                .map_err(StartError::Poll)?;
            listeners.push(Listener {
                socket,
                token: HTTP_LISTENER,
                protocol: Protocol::Http,
                accept: Accept::Ready,
            });
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(StartError::Poll)?);
        Ok(Server {
            poll,
            listeners,
            local_addr,
            graphite_udp,
            graphite_addr,
            http_addr,
            connections: Slab::new(),
            engine,
            held: Vec::new(),
            compacting: false,
            stopping: None,
            now: Instant::now(),
            idle_timeout: config.idle_timeout,
            next_idle_sweep: config.idle_timeout.map(|t| Instant::now() + idle_sweep_interval(t)),
            next_self_metrics: config.self_metrics.as_ref().map(|m| Instant::now() + m.interval),
            self_metrics: config.self_metrics.clone(),
            // The first pass at once: a restart may have loaded chunks that
            // expired while the server was down.
            next_expiry: config.store.retention.map(|_| Instant::now()),
            expiring: false,
            next_housekeeping: Instant::now() + HOUSEKEEPING_INTERVAL,
            limits: config.limits,
            max_connections: config.max_connections,
            scratch: vec![0; READ_SCRATCH_BYTES].into_boxed_slice(),
            ready: Vec::new(),
            waiting: VecDeque::new(),
            spare_fd: File::open("/dev/null").ok(),
            stop: Arc::new(AtomicBool::new(false)),
            waker,
            warn_full: RateLimitedWarning::default(),
            warn_accept: RateLimitedWarning::default(),
        })
    }

    /// The address actually bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The Graphite port (TCP and UDP), when one was asked for.
    pub fn graphite_addr(&self) -> Option<SocketAddr> {
        self.graphite_addr
    }

    /// The HTTP API's address actually bound, when one was asked for.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// A handle that stops [`Server::run`] from another thread.
    pub fn handle(&self) -> Handle {
        Handle {
            stop: Arc::clone(&self.stop),
            waker: Arc::clone(&self.waker),
        }
    }

    /// Serves until [`Handle::shutdown`] is called (then stops gracefully)
    /// or the poll fails.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        let mut turn: Vec<usize> = Vec::new();
        loop {
            if let Err(e) = self.poll.poll(&mut events, self.poll_timeout()) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    GRAPHITE_UDP => {
                        if let Some(udp) = &mut self.graphite_udp {
                            udp.mark_ready();
                        }
                    }
                    token if token.0 < FIRST_CONNECTION => {
                        let listener = self.listeners.iter_mut().find(|l| l.token == token);
                        if let Some(listener) = listener.filter(|l| l.accept == Accept::Waiting) {
                            listener.accept = Accept::Ready;
                        }
                    }
                    Token(t) => {
                        let key = t - FIRST_CONNECTION;
                        if let Some(conn) = self.connections.get_mut(key) {
                            conn.mark_ready(
                                event.is_readable(),
                                event.is_read_closed()
                                    || event.is_write_closed()
                                    || event.is_error()
                                    || event.is_priority(),
                            );
                            enqueue(&mut self.ready, key, conn);
                        }
                    }
                }
            }
            self.now = Instant::now();
            if self.stop.load(Ordering::SeqCst) && self.stopping.is_none() {
                self.begin_stopping();
            }
            if let Some(deadline) = self.stopping {
                if self.connections.is_empty() || Instant::now() >= deadline {
                    return self.finish();
                }
            }
            for index in 0..self.listeners.len() {
                let listener = &mut self.listeners[index];
                if let Accept::PausedUntil(until) = listener.accept {
                    if Instant::now() >= until {
                        listener.accept = Accept::Ready;
                    }
                }
                if listener.accept == Accept::Ready {
                    self.accept(index);
                }
            }
            self.engine.begin_turn();
            std::mem::swap(&mut turn, &mut self.ready);
            for key in turn.drain(..) {
                self.service(key);
            }
            if let Some(udp) = &mut self.graphite_udp {
                udp.serve(&mut self.scratch, &mut self.engine, &self.limits);
            }
            self.run_timers();
            self.commit_turn();
            self.wake_waiting();
            self.compacting = self.engine.compaction_step();
        }
    }

    /// Queues connections waiting for output memory, oldest first, about
    /// as many as the room left can take a slice each: room is handed out
    /// in turn, so no waiting connection is passed over for long.
    fn wake_waiting(&mut self) {
        let mut room = self.engine.output_room();
        while room > 0 {
            let Some(key) = self.waiting.pop_front() else {
                return;
            };
            // A key closed while it waited (perhaps reused since) is skipped.
            let Some(conn) = self.connections.get_mut(key).filter(|conn| conn.waiting) else {
                continue;
            };
            conn.waiting = false;
            enqueue(&mut self.ready, key, conn);
            room = room.saturating_sub(ANSWER_SLICE_BYTES);
        }
    }

    /// The idle sweep, the self-metrics and the engine's chores, when they
    /// are due.
    fn run_timers(&mut self) {
        if self.now >= self.next_housekeeping {
            self.engine.chores();
            self.warn_full.flush();
            self.warn_accept.flush();
            self.next_housekeeping = self.now + HOUSEKEEPING_INTERVAL;
        }
        if self.expiring || self.next_expiry.is_some_and(|at| self.now >= at) {
            self.expiring = self.engine.expire_step(crate::clock::unix_now());
            if !self.expiring {
                self.next_expiry = Some(self.now + EXPIRE_INTERVAL);
            }
        }
        if self.next_idle_sweep.is_some_and(|at| self.now >= at) {
            if let Some(timeout) = self.idle_timeout {
                self.close_idle(timeout);
                self.next_idle_sweep = Some(self.now + idle_sweep_interval(timeout));
            }
        }
        if self.next_self_metrics.is_some_and(|at| self.now >= at) {
            if let Some(config) = &self.self_metrics {
                self.next_self_metrics = Some(self.now + config.interval);
                let timestamp = crate::clock::unix_now();
                let figures = self.engine.figures();
                let points = (figures.iter())
                    .map(|(name, value)| (format!("{}{name}", config.prefix), timestamp, *value as f64));
                // Refused only when the log is failing, which is logged.
                let _ = self.engine.put_batch(points);
            }
        }
    }

    /// Closes connections silent for `timeout`: O(connections), once per
    /// sweep interval.
    fn close_idle(&mut self, timeout: Duration) {
        let now = self.now;
        let idle: Vec<usize> = (self.connections.iter())
            .filter(|(_, conn)| now.duration_since(conn.last_active) >= timeout)
            .map(|(key, _)| key)
            .collect();
        if !idle.is_empty() {
            log::debug!(
                "closing {} connections idle for {} s",
                idle.len(),
                timeout.as_secs_f64()
            );
        }
        self.engine.count(Event::IdleClosed(idle.len()));
        for key in idle {
            self.close(key);
        }
    }

    /// Block until an event, unless work is already waiting.
    fn poll_timeout(&self) -> Option<Duration> {
        let accepting = self.listeners.iter().any(|l| l.accept == Accept::Ready);
        let datagrams = self.graphite_udp.as_ref().is_some_and(GraphiteUdp::is_ready);
        let stopped = self.stopping.is_some() && self.connections.is_empty();
        if !self.ready.is_empty() || accepting || datagrams || self.compacting || self.expiring || stopped {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        let finishing = self.engine.compaction_finishing();
        let paused = (self.listeners.iter()).filter_map(|l| match l.accept {
            Accept::PausedUntil(until) => Some(until),
            _ => None,
        });
        [
            paused.min().map(|until| until.saturating_duration_since(now)),
            self.stopping.map(|deadline| deadline.saturating_duration_since(now)),
            finishing.then_some(COMPACTION_POLL),
            self.next_idle_sweep.map(|at| at.saturating_duration_since(now)),
            self.next_self_metrics.map(|at| at.saturating_duration_since(now)),
            self.next_expiry.map(|at| at.saturating_duration_since(now)),
            Some(self.next_housekeeping.saturating_duration_since(now)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Stops accepting and reading; what was read is still answered.
    fn begin_stopping(&mut self) {
        log::info!(
            "stopping: answering what was read from {} connections (at most {} s)",
            self.connections.len(),
            SHUTDOWN_GRACE.as_secs()
        );
        self.stopping = Some(Instant::now() + SHUTDOWN_GRACE);
        self.engine.stop_compacting();
        // Closing the listener makes new connections fail at once instead of
        // waiting in a backlog nobody will accept from.
        for mut listener in self.listeners.drain(..) {
            if let Err(e) = self.poll.registry().deregister(&mut listener.socket) {
                log::debug!("deregister listener: {e}");
            }
        }
        // Datagrams are read no more, like requests; what was read is stored.
        if let Some(mut udp) = self.graphite_udp.take() {
            udp.deregister(self.poll.registry());
        }
        for (key, conn) in self.connections.iter_mut() {
            conn.stop();
            enqueue(&mut self.ready, key, conn);
        }
    }

    /// The end of a graceful stop: the log is synced whatever the policy.
    fn finish(mut self) -> io::Result<()> {
        if !self.connections.is_empty() {
            log::warn!(
                "{} connections still had answers to send after {} s; closing them",
                self.connections.len(),
                SHUTDOWN_GRACE.as_secs()
            );
        }
        self.commit_turn();
        if self.engine.is_durable() {
            self.engine.close()?;
            log::info!("log synced");
        }
        log::info!("stopped");
        Ok(())
    }

    /// Appends the turn's puts to the log, then releases their answers (or
    /// turns them into errors if the log could not take them).
    fn commit_turn(&mut self) {
        if !self.engine.is_durable() {
            return;
        }
        let outcome = self.engine.commit();
        let outcome = outcome.as_ref().map(|_| ());
        let mut held = std::mem::take(&mut self.held);
        for key in held.drain(..) {
            if let Some(conn) = self.connections.get_mut(key) {
                let before = conn.pending_output();
                let next = conn.settle_held(outcome, &self.limits, &mut self.engine);
                self.after_work(key, before);
                self.settle(key, next);
            }
        }
        self.held = held;
    }

    fn service(&mut self, key: usize) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        conn.queued = false;
        let before = conn.pending_output();
        let next = conn.service(&mut self.scratch, &mut self.engine, &self.limits);
        if next != Next::Close && conn.holds_output() {
            self.held.push(key);
        }
        self.after_work(key, before);
        self.settle(key, next);
    }

    /// Keeps the gauges and the idle clock up to date after a connection
    /// worked (`before`: its pending output until then).
    fn after_work(&mut self, key: usize, before: usize) {
        if let Some(conn) = self.connections.get_mut(key) {
            if conn.take_active() {
                conn.last_active = self.now;
            }
            self.engine.output_changed(before, conn.pending_output());
        }
    }

    /// Acts on what a connection needs next: closing, poll interest, queue.
    fn settle(&mut self, key: usize, next: Next) {
        if next == Next::Close {
            self.close(key);
            return;
        }
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        let interest = conn.wanted_interest();
        if conn.set_registered(interest) {
            let token = Token(key + FIRST_CONNECTION);
            if let Err(e) = self.poll.registry().reregister(conn.stream_mut(), token, interest) {
                log::warn!("cannot update poll interest: {e}");
                self.close(key);
                return;
            }
        }
        match next {
            Next::Again => enqueue(&mut self.ready, key, conn),
            Next::WaitForRoom if !conn.waiting => {
                conn.waiting = true;
                self.waiting.push_back(key);
                self.engine.count(Event::OutputWait);
            }
            _ => {}
        }
    }

    fn close(&mut self, key: usize) {
        let mut conn = self.connections.remove(key);
        self.engine.output_changed(conn.pending_output(), 0);
        self.engine.set_connections(self.connections.len());
        if let Err(e) = self.poll.registry().deregister(conn.stream_mut()) {
            log::debug!("deregister failed: {e}");
        }
    }

    /// Accepts from the listener `index` of `listeners`.
    fn accept(&mut self, index: usize) {
        for _ in 0..MAX_ACCEPTS_PER_TURN {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.socket.accept() {
                Ok((stream, peer)) => {
                    let protocol = listener.protocol;
                    self.admit(stream, peer, protocol);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.set_accept(index, Accept::Waiting);
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // The peer gave up while waiting in the backlog: nothing to do.
                Err(e) if e.kind() == ErrorKind::ConnectionAborted => {}
                Err(e) if is_out_of_descriptors(&e) => match self.shed_one_connection(index) {
                    Shed::One => {}
                    Shed::BacklogEmpty => {
                        self.set_accept(index, Accept::Waiting);
                        return;
                    }
                    Shed::Failed => {
                        self.pause_accepting(index, &e);
                        return;
                    }
                },
                Err(e) => {
                    self.pause_accepting(index, &e);
                    return;
                }
            }
        }
        // Still more waiting: the listener stays Ready, the next turn goes on.
    }

    fn set_accept(&mut self, index: usize, accept: Accept) {
        if let Some(listener) = self.listeners.get_mut(index) {
            listener.accept = accept;
        }
    }

    /// Accepts one waiting connection and closes it at once, using the spare
    /// descriptor.
    fn shed_one_connection(&mut self, index: usize) -> Shed {
        let Some(spare) = self.spare_fd.take() else {
            return Shed::Failed;
        };
        drop(spare);
        // Close the shed connection before taking the spare back: its
        // descriptor is the one the spare needs.
        let Some(listener) = self.listeners.get(index) else {
            return Shed::Failed;
        };
        let accepted = listener.socket.accept().map(drop);
        self.spare_fd = File::open("/dev/null").ok();
        match accepted {
            Ok(_) => {
                self.engine.count(Event::Rejected);
                self.warn_accept.warn(format_args!(
                    "out of file descriptors: closing new connections at once ({} open)",
                    self.connections.len()
                ));
                Shed::One
            }
            // accept() fails for want of a descriptor before it looks at the
            // backlog, so EMFILE does not mean anyone is waiting: only this
            // accept, with a descriptor free, tells.
            Err(e) if e.kind() == ErrorKind::WouldBlock => Shed::BacklogEmpty,
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::ConnectionAborted) => Shed::One,
            Err(_) => Shed::Failed,
        }
    }

    fn pause_accepting(&mut self, index: usize, e: &io::Error) {
        self.warn_accept.warn(format_args!(
            "accept failed: {e}; pausing accepts for {} ms",
            ACCEPT_BACKOFF.as_millis()
        ));
        self.set_accept(index, Accept::PausedUntil(Instant::now() + ACCEPT_BACKOFF));
        if self.spare_fd.is_none() {
            self.spare_fd = File::open("/dev/null").ok();
        }
    }

    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, protocol: Protocol) {
        self.engine.count(Event::Accepted);
        if self.connections.len() >= self.max_connections {
            self.engine.count(Event::Rejected);
            self.warn_full.warn(format_args!(
                "connection limit ({}) reached: closing new connection from {peer}",
                self.max_connections
            ));
            return;
        }
        // Answers are small and written in whole batches by us; Nagle would
        // only hold the last one of a batch back.
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("set_nodelay failed for {peer}: {e}");
        }
        let entry = self.connections.vacant_entry();
        let token = Token(entry.key() + FIRST_CONNECTION);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, token, Connection::BASE_INTEREST)
        {
            log::warn!("cannot register connection from {peer}: {e}");
            return;
        }
        log::debug!("connection from {peer}");
        entry.insert(Connection::new(stream, peer, protocol, &self.limits, self.now));
        self.engine.set_connections(self.connections.len());
    }
}

/// What came of trying to shed a connection when out of descriptors.
enum Shed {
    /// One waiting connection was accepted and closed; there may be more.
    One,
    /// Nobody was waiting.
    BacklogEmpty,
    /// No spare descriptor, or the accept failed even with it.
    Failed,
}

/// Starts a server with default limits on a free port of 127.0.0.1, in a
/// thread of its own, and returns its address and the handle that stops it:
/// for tests and examples of programs that talk to metricsd.
///
/// ```
/// let (addr, server) = metricsd::server::spawn_local()?;
/// let mut client = metricsd::Client::new("127.0.0.1", addr.port(), None)?;
/// client.put("k", 1.0, Some(1))?;
/// server.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn spawn_local() -> io::Result<(SocketAddr, Handle)> {
    let server = Server::bind(Config {
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    })
    .map_err(io::Error::other)?;
    let (addr, handle) = (server.local_addr(), server.handle());
    std::thread::Builder::new().name("metricsd".into()).spawn(move || {
        if let Err(e) = server.run() {
            log::error!("metricsd server thread: {e}");
        }
    })?;
    Ok((addr, handle))
}

fn enqueue(ready: &mut Vec<usize>, key: usize, conn: &mut Connection) {
    if !conn.queued {
        conn.queued = true;
        ready.push(key);
    }
}

fn bind_first(listen: &str) -> io::Result<TcpListener> {
    let mut last_error = None;
    for addr in listen.to_socket_addrs()? {
        match TcpListener::bind(addr) {
            Ok(listener) => {
                deepen_backlog(&listener);
                return Ok(listener);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(ErrorKind::InvalidInput, format!("{listen} resolves to no address"))))
}

/// Times a port that is free for TCP is tried for UDP too, when the port
/// is left to the system (port 0): another program can hold the same number
/// for UDP, rarely twice in a row.
const SAME_PORT_TRIES: usize = 32;

/// A TCP listener and a UDP socket on the same address and port (Graphite's
/// plaintext is spoken over both).
fn bind_tcp_and_udp(listen: &str) -> io::Result<(TcpListener, GraphiteUdp)> {
    let mut tries = 0;
    loop {
        let tcp = bind_first(listen)?;
        let addr = tcp.local_addr()?;
        match GraphiteUdp::bind(addr) {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) if e.kind() == ErrorKind::AddrInUse && tries + 1 < SAME_PORT_TRIES && asks_any_port(listen) => {
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether `listen` leaves the port to the system.
fn asks_any_port(listen: &str) -> bool {
    listen.rsplit_once(':').is_some_and(|(_, port)| port == "0")
}

/// Connections the kernel may queue for `accept` (the kernel caps it at
/// `net.core.somaxconn`, 4096 by default since Linux 5.4). mio listens with
/// 1024: a storm of thousands of connects overflowed that whenever the
/// loop was descheduled for a moment on a busy machine, and every overflow
/// costs the client a one-second SYN retransmit (seen as `ListenOverflows`
/// in `nstat` while 10,000 connections opened).
const LISTEN_BACKLOG: libc::c_int = 4096;

/// Linux lets `listen` be called again on a listening socket to change its
/// backlog. A failure keeps mio's backlog, which works, only smaller.
fn deepen_backlog(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: listen() on a descriptor we own; it touches no memory of ours.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
        log::debug!("cannot deepen the listen backlog: {}", io::Error::last_os_error());
    }
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    // EMFILE (per process) and ENFILE (system-wide), Linux's numbering.
    matches!(e.raw_os_error(), Some(24) | Some(23))
}

/// How often idle connections are looked for: often enough that one is
/// closed at most half its timeout late, and at least once a second.
fn idle_sweep_interval(timeout: Duration) -> Duration {
    (timeout / 2).clamp(Duration::from_millis(10), Duration::from_secs(1))
}
