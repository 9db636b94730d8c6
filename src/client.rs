//! The blocking client of PROTOCOL.md's last section.
//!
//! One [`Client`] holds one TCP connection for all its calls, like the
//! assignment's Python `Client`. Each call sends its request(s) and reads
//! exactly the answers that belong to them.
//!
//! **Timeouts** bound each whole call (connect, or a request and its answer),
//! not each socket operation: a server that trickles bytes cannot stretch a
//! call past its timeout.
//!
//! **A broken connection stays broken.** After an I/O error, a timeout, a
//! closed connection, a malformed or a foreign answer, the client can no
//! longer tell which answer belongs to which request, so every later call
//! fails at once with [`ClientError::Broken`], naming the first failure,
//! without sending anything.
//! [`Client::reconnect`] opens a fresh connection. The client never reconnects
//! by itself: a `put` that timed out may or may not have been stored, and only
//! the caller knows whether to send it again. An `error` answer from the
//! server does not break the connection.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let port = metricsd::server::spawn_local()?.0.port();
//! use metricsd::client::Client;
//! use std::time::Duration;
//!
//! let mut client = Client::new("127.0.0.1", port, Some(Duration::from_secs(15)))?;
//! client.put("palm.cpu", 0.5, Some(1150864247))?;
//! client.put("palm.cpu", 2.0, Some(1150864248))?;
//! client.put("palm.cpu", 0.5, Some(1150864248))?; // same second: replaces 2.0
//! client.put_many(&[("eardrum.cpu", 3.0, Some(1150864250)), ("eardrum.cpu", 4.0, Some(1150864251))])?;
//!
//! let palm = client.get("palm.cpu")?;
//! assert_eq!(palm["palm.cpu"], [(1150864247, 0.5), (1150864248, 0.5)]);
//! let all = client.get("*")?;
//! assert_eq!(all.keys().collect::<Vec<_>>(), ["eardrum.cpu", "palm.cpu"]);
//! assert!(client.get("nothing.here")?.is_empty());
//! # Ok(())
//! # }
//! ```

use crate::clock::unix_now;
use crate::protocol::request::{encode_delete, encode_get, encode_put, encode_range, encode_stats, Buckets, Range};
use crate::protocol::response::{parse_response, Response, ResponseError, ResponseScanner};
use crate::protocol::{is_valid_key, Agg, Query};
use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// What `get` returns: each key's points as (timestamp, value), ascending.
pub type Metrics = BTreeMap<String, Vec<(i64, f64)>>;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting to `addr` (`HOST:PORT`) failed: refused, unreachable, a
    /// name that does not resolve, or the timeout (kind `TimedOut`).
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The call did not finish within the client's timeout.
    #[error("timed out")]
    Timeout,
    /// What answered does not speak metricsd's protocol (an HTTP server, an
    /// SSH greeting, Redis...): the first bytes of an answer cannot begin
    /// `ok\n` or `error\n`. Holds those bytes as received, at most
    /// [`FOREIGN_BYTES_KEPT`]; the message shows them escaped.
    #[error("the server answered {} which is not the metricsd protocol", foreign(.0))]
    NotMetricsd(Vec<u8>),
    /// The server closed the connection before answering in full.
    #[error("connection closed by the server")]
    Closed,
    /// The server answered `error`, with this message (`wrong command`).
    #[error("server error: {0}")]
    Server(String),
    /// The server's answer does not follow the protocol.
    #[error("malformed answer: {0}")]
    Malformed(#[from] ResponseError),
    /// A key the server would reject (empty, whitespace or control
    /// characters, or `*` in a put); nothing was sent.
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    /// A value that is not finite (NaN or infinite); nothing was sent.
    #[error("invalid value {0}: only finite numbers can be stored")]
    InvalidValue(f64),
    /// A range the server would reject (`from` after `to`, or a step that
    /// is not above zero); nothing was sent.
    #[error("invalid range: {0}")]
    InvalidRange(String),
    /// An earlier failure left the connection unusable; see the module docs.
    #[error("connection unusable after an earlier failure ({0}); call reconnect()")]
    Broken(String),
}

impl ClientError {
    /// Whether this failure leaves the answer stream out of step.
    fn breaks_connection(&self) -> bool {
        matches!(
            self,
            ClientError::Io(_)
                | ClientError::Timeout
                | ClientError::Closed
                | ClientError::Malformed(_)
                | ClientError::NotMetricsd(_)
        )
    }
}

/// Bytes of a foreign answer that [`ClientError::NotMetricsd`] keeps: an
/// HTTP status line, an SSH greeting or a Redis error fits in 64, and the
/// message stays one short line. One more is kept to know whether to
/// show `...`.
pub const FOREIGN_BYTES_KEPT: usize = 65;

/// The first line of a foreign answer, at most 64 bytes, escaped and
/// quoted, with `...` when more was received.
fn foreign(seen: &[u8]) -> String {
    let line_end = memchr::memchr(b'\n', seen).map_or(seen.len(), |i| i + 1);
    let shown = line_end.min(FOREIGN_BYTES_KEPT - 1);
    let more = if seen.len() > shown { "..." } else { "" };
    format!("\"{}{more}\"", seen[..shown].escape_ascii())
}

/// Whether `bytes`, the start of an answer as far as it has arrived, can
/// still become one: its status line is `ok` or `error`.
fn could_be_an_answer(bytes: &[u8]) -> bool {
    let starts = |status: &[u8]| status.starts_with(&bytes[..bytes.len().min(status.len())]);
    starts(b"ok\n") || starts(b"error\n")
}

/// Puts sent in one round trip by [`Client::put_many`]. Their answers take at
/// most 21 × 4096 = 84 KiB (all `error\nwrong command\n\n`; 16 KiB of `ok`s
/// normally), far below the server's default output limit of 4 MiB, so the
/// server keeps reading the window while the client is still writing it: a
/// batch of any size cannot deadlock with both sides blocked on writes.
const PUT_MANY_WINDOW: usize = 4096;

/// Smallest read buffer; it doubles for large answers.
const MIN_READ_BUFFER: usize = 16 * 1024;
/// A read buffer grown past this by a large answer is freed after it.
const MAX_RETAINED_READ_BUFFER: usize = 1024 * 1024;

/// A blocking connection to a metricsd server.
pub struct Client {
    host: String,
    port: u16,
    timeout: Option<Duration>,
    stream: TcpStream,
    /// Received bytes; those not yet consumed are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    scanner: ResponseScanner,
    /// The request being sent, kept to reuse its allocation.
    request: Vec<u8>,
    /// Why the connection is unusable, once it is.
    broken: Option<String>,
}

impl Client {
    /// Connects to `host:port`. `timeout` bounds the connect and every later
    /// call; `None` waits forever.
    ///
    /// ```
    /// # let port = metricsd::server::spawn_local()?.0.port();
    /// use metricsd::{Client, ClientError};
    /// use std::time::Duration;
    ///
    /// let client = Client::new("127.0.0.1", port, Some(Duration::from_secs(5)))?;
    /// # Ok::<(), ClientError>(())
    /// ```
    pub fn new(host: &str, port: u16, timeout: Option<Duration>) -> Result<Client, ClientError> {
        let stream = connect(host, port, timeout)?;
        Ok(Client {
            host: host.to_owned(),
            port,
            timeout,
            stream,
            buf: Vec::new(),
            start: 0,
            end: 0,
            scanner: ResponseScanner::new(),
            request: Vec::new(),
            broken: None,
        })
    }

    /// Replaces the connection with a fresh one to the same address, after
    /// a failure left the old one [`ClientError::Broken`].
    pub fn reconnect(&mut self) -> Result<(), ClientError> {
        self.stream = connect(&self.host, self.port, self.timeout)?;
        self.start = 0;
        self.end = 0;
        self.scanner = ResponseScanner::new();
        self.broken = None;
        Ok(())
    }

    /// Whether an earlier failure made the connection unusable.
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Stores one point; `timestamp` None means now (whole Unix seconds).
    /// Sends exactly `put <key> <value> <timestamp>\n`.
    ///
    /// ```
    /// # let port = metricsd::server::spawn_local()?.0.port();
    /// # let mut client = metricsd::Client::new("127.0.0.1", port, None)?;
    /// use metricsd::ClientError;
    ///
    /// client.put("palm.cpu", 23.7, Some(1150864247))?;
    /// client.put("palm.cpu", 23.9, None)?; // the current second
    /// assert!(matches!(client.put("a key", 1.0, None), Err(ClientError::InvalidKey(_))));
    /// assert!(matches!(client.put("k", f64::NAN, None), Err(ClientError::InvalidValue(_))));
    /// # Ok::<(), ClientError>(())
    /// ```
    pub fn put(&mut self, key: &str, value: f64, timestamp: Option<i64>) -> Result<(), ClientError> {
        self.check_usable()?;
        check_put(key, value)?;
        self.request.clear();
        encode_put(&mut self.request, key, value, timestamp.unwrap_or_else(unix_now));
        self.exchange(self.deadline(), 1, expect_empty_ok)
    }

    /// Stores many points, pipelined: one round trip per 4096 points, all
    /// within one timeout.
    ///
    /// Every point is checked before anything is sent. If the server rejects
    /// some, the others are still stored and the first rejection is returned.
    ///
    /// ```
    /// # let port = metricsd::server::spawn_local()?.0.port();
    /// # let mut client = metricsd::Client::new("127.0.0.1", port, None)?;
    /// let points: Vec<(String, f64, Option<i64>)> =
    ///     (0..10_000).map(|i| (format!("host{}.cpu", i % 10), 0.5, Some(i))).collect();
    /// client.put_many(&points)?;
    /// assert_eq!(client.get("host3.cpu")?["host3.cpu"].len(), 1000);
    /// # Ok::<(), metricsd::ClientError>(())
    /// ```
    pub fn put_many<K: AsRef<str>>(&mut self, points: &[(K, f64, Option<i64>)]) -> Result<(), ClientError> {
        self.check_usable()?;
        for (key, value, _) in points {
            check_put(key.as_ref(), *value)?;
        }
        let now = unix_now();
        let deadline = self.deadline();
        let mut first_rejection = None;
        for window in points.chunks(PUT_MANY_WINDOW) {
            self.request.clear();
            for (key, value, timestamp) in window {
                encode_put(&mut self.request, key.as_ref(), *value, timestamp.unwrap_or(now));
            }
            match self.exchange(deadline, window.len(), expect_empty_ok) {
                Err(ClientError::Server(message)) => {
                    first_rejection.get_or_insert(ClientError::Server(message));
                }
                other => other?,
            }
        }
        first_rejection.map_or(Ok(()), Err)
    }

    /// All points of `key`, or of every key for `*`, each key's sorted by
    /// timestamp. An empty map when there are none.
    ///
    /// ```
    /// # let port = metricsd::server::spawn_local()?.0.port();
    /// # let mut client = metricsd::Client::new("127.0.0.1", port, None)?;
    /// client.put("palm.cpu", 0.5, Some(1150864248))?;
    /// client.put("palm.cpu", 2.0, Some(1150864247))?;
    /// client.put("eardrum.cpu", 3.0, Some(1150864250))?;
    /// let all = client.get("*")?;
    /// assert_eq!(all["palm.cpu"], [(1150864247, 2.0), (1150864248, 0.5)]);
    /// assert_eq!(all["eardrum.cpu"], [(1150864250, 3.0)]);
    /// assert!(client.get("nothing.here")?.is_empty());
    /// # Ok::<(), metricsd::ClientError>(())
    /// ```
    pub fn get(&mut self, key: &str) -> Result<Metrics, ClientError> {
        self.check_usable()?;
        let query = query(key)?;
        self.request.clear();
        encode_get(&mut self.request, query);
        self.read_points()
    }

    /// The points of `key` (or of every key, for `*`) with `from <= timestamp
    /// <= to`, as [`Client::get`] returns them. Sends `range <key> <from>
    /// <to>\n`.
    ///
    /// ```
    /// # let port = metricsd::server::spawn_local()?.0.port();
    /// # let mut client = metricsd::Client::new("127.0.0.1", port, None)?;
    /// for ts in 0..10 {
    ///     client.put("palm.cpu", ts as f64, Some(ts))?;
    /// }
    /// assert_eq!(client.range("palm.cpu", 3, 5)?["palm.cpu"], [(3, 3.0), (4, 4.0), (5, 5.0)]);
    /// assert!(client.range("*", 10, 20)?.is_empty());
    /// assert!(matches!(client.range("palm.cpu", 5, 3), Err(metricsd::ClientError::InvalidRange(_))));
    /// # Ok::<(), metricsd::ClientError>(())
    /// ```
    pub fn range(&mut self, key: &str, from: i64, to: i64) -> Result<Metrics, ClientError> {
        self.range_request(key, from, to, None)
    }

    /// One row per non-empty bucket of `step` seconds of the points of `key`
    /// (or of every key, for `*`) with `from <= timestamp <= to`: the
    /// bucket's start (`ts - ts.rem_euclid(step)`, which may be before
    /// `from`) and `agg` of its values. Sends `range <key> <from> <to>
    /// <step> <fn>\n`.
    ///
    /// ```
    /// # let port = metricsd::server::spawn_local()?.0.port();
    /// # let mut client = metricsd::Client::new("127.0.0.1", port, None)?;
    /// use metricsd::protocol::Agg;
    ///
    /// for ts in 0..120 {
    ///     client.put("palm.cpu", ts as f64, Some(ts))?;
    /// }
    /// let per_minute = client.range_agg("palm.cpu", 0, 119, 60, Agg::Max)?;
    /// assert_eq!(per_minute["palm.cpu"], [(0, 59.0), (60, 119.0)]);
    /// # Ok::<(), metricsd::ClientError>(())
    /// ```
    pub fn range_agg(&mut self, key: &str, from: i64, to: i64, step: i64, agg: Agg) -> Result<Metrics, ClientError> {
        self.range_request(key, from, to, Some(Buckets { step, agg }))
    }

    fn range_request(
        &mut self,
        key: &str,
        from: i64,
        to: i64,
        buckets: Option<Buckets>,
    ) -> Result<Metrics, ClientError> {
        self.check_usable()?;
        let query = query(key)?;
        if from > to {
            return Err(ClientError::InvalidRange(format!("from {from} is after to {to}")));
        }
        if let Some(Buckets { step: ..=0, .. }) = buckets {
            return Err(ClientError::InvalidRange("the step must be above zero".to_owned()));
        }
        self.request.clear();
        encode_range(
            &mut self.request,
            &Range {
                query,
                from,
                to,
                buckets,
            },
        );
        self.read_points()
    }

    /// Sends `self.request`, a `get` or `range`, and collects its points.
    fn read_points(&mut self) -> Result<Metrics, ClientError> {
        let mut metrics = Metrics::new();
        self.exchange(self.deadline(), 1, |answer| {
            for point in answer.points() {
                let point = point?;
                let entry = (point.timestamp, point.value);
                match metrics.get_mut(point.key) {
                    Some(points) => points.push(entry),
                    None => {
                        metrics.insert(point.key.to_owned(), vec![entry]);
                    }
                }
            }
            Ok(())
        })?;
        // Our server sends points sorted; another server need not.
        for points in metrics.values_mut() {
            if !points.windows(2).all(|w| w[0].0 <= w[1].0) {
                points.sort_by_key(|&(timestamp, _)| timestamp);
            }
        }
        Ok(metrics)
    }

    /// Removes every point of `key` (`delete`, an extension of metricsd's).
    /// `Ok(())` whether or not the key had points; on a durable server the
    /// delete is logged like a put and survives a restart.
    ///
    /// ```
    /// # let port = metricsd::server::spawn_local()?.0.port();
    /// # let mut client = metricsd::Client::new("127.0.0.1", port, None)?;
    /// use metricsd::ClientError;
    ///
    /// client.put("palm.cpu", 0.5, Some(1150864248))?;
    /// client.delete("palm.cpu")?;
    /// assert!(client.get("palm.cpu")?.is_empty());
    /// client.delete("never.there")?;
    /// assert!(matches!(client.delete("*"), Err(ClientError::InvalidKey(_))));
    /// # Ok::<(), ClientError>(())
    /// ```
    pub fn delete(&mut self, key: &str) -> Result<(), ClientError> {
        self.check_usable()?;
        check_key(key)?;
        self.request.clear();
        encode_delete(&mut self.request, key);
        self.exchange(self.deadline(), 1, expect_empty_ok)
    }

    /// The server's own figures (`stats`, an extension of metricsd's): name
    /// and value, in the server's order.
    ///
    /// ```
    /// # let port = metricsd::server::spawn_local()?.0.port();
    /// # let mut client = metricsd::Client::new("127.0.0.1", port, None)?;
    /// client.put("palm.cpu", 0.5, Some(1150864248))?;
    /// let stats = client.stats()?;
    /// assert!(stats.contains(&("points".to_owned(), "1".to_owned())));
    /// # Ok::<(), metricsd::ClientError>(())
    /// ```
    pub fn stats(&mut self) -> Result<Vec<(String, String)>, ClientError> {
        self.check_usable()?;
        self.request.clear();
        encode_stats(&mut self.request);
        let mut figures = Vec::new();
        self.exchange(self.deadline(), 1, |answer| {
            for line in answer.stats() {
                let (name, value) = line?;
                figures.push((name.to_owned(), value.to_owned()));
            }
            Ok(())
        })?;
        Ok(figures)
    }

    /// When a call starting now must be done.
    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| Instant::now() + t)
    }

    /// Fails with [`ClientError::Broken`] once the connection is unusable.
    fn check_usable(&self) -> Result<(), ClientError> {
        match &self.broken {
            Some(cause) => Err(ClientError::Broken(cause.clone())),
            None => Ok(()),
        }
    }

    /// Sends `self.request` and reads `answers` answers, handing each `ok` to
    /// `on_ok`. Reads all of them even after an `error` answer (which it then
    /// returns), so the connection stays in step.
    fn exchange(
        &mut self,
        deadline: Option<Instant>,
        answers: usize,
        mut on_ok: impl FnMut(Response<'_>) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        self.check_usable()?;
        let result = self.exchange_unchecked(deadline, answers, &mut on_ok);
        if let Err(e) = &result {
            if e.breaks_connection() {
                self.broken = Some(e.to_string());
            }
        }
        result
    }

    fn exchange_unchecked(
        &mut self,
        deadline: Option<Instant>,
        answers: usize,
        on_ok: &mut impl FnMut(Response<'_>) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        self.send(deadline)?;
        let mut rejection = None;
        for _ in 0..answers {
            let len = self.receive(deadline)?;
            let answer = parse_response(&self.buf[self.start..self.start + len])?;
            match answer {
                Response::Error { message } => {
                    rejection.get_or_insert_with(|| ClientError::Server(message.to_owned()));
                }
                ok => on_ok(ok)?,
            }
            self.start += len;
        }
        if self.start != self.end {
            return Err(ResponseError::Unsolicited.into());
        }
        self.start = 0;
        self.end = 0;
        if self.buf.len() > MAX_RETAINED_READ_BUFFER {
            // Don't pin what one big `get *` needed for the client's lifetime.
            self.buf = Vec::new();
        }
        rejection.map_or(Ok(()), Err)
    }

    fn send(&mut self, deadline: Option<Instant>) -> Result<(), ClientError> {
        let mut sent = 0;
        while sent < self.request.len() {
            if let Some(deadline) = deadline {
                self.stream.set_write_timeout(Some(remaining(deadline)?))?;
            }
            match self.stream.write(&self.request[sent..]) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => sent += n,
                Err(e) => match classify(e) {
                    None => {}
                    Some(e) => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// Reads until a whole answer is buffered at `buf[start..]`; returns its
    /// length.
    fn receive(&mut self, deadline: Option<Instant>) -> Result<usize, ClientError> {
        loop {
            // Checked first, so that something that is not metricsd is
            // named at once instead of being waited on for a `\n\n` it
            // may never send.
            let answer = &self.buf[self.start..self.end];
            if !could_be_an_answer(answer) {
                return Err(ClientError::NotMetricsd(
                    answer[..answer.len().min(FOREIGN_BYTES_KEPT)].to_vec(),
                ));
            }
            if let Some(len) = self.scanner.check(answer) {
                return Ok(len);
            }
            if self.end == self.buf.len() {
                if self.start > 0 {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                } else {
                    let size = (self.buf.len() * 2).max(MIN_READ_BUFFER);
                    self.buf.resize(size, 0);
                }
            }
            if let Some(deadline) = deadline {
                self.stream.set_read_timeout(Some(remaining(deadline)?))?;
            }
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => self.end += n,
                Err(e) => match classify(e) {
                    None => {}
                    Some(e) => return Err(e),
                },
            }
        }
    }
}

/// Turns a socket error into the client's error; `None` for EINTR (retry).
fn classify(e: io::Error) -> Option<ClientError> {
    match e.kind() {
        ErrorKind::Interrupted => None,
        // A socket timeout shows as EAGAIN on Unix, TimedOut elsewhere.
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Some(ClientError::Timeout),
        _ => Some(ClientError::Io(e)),
    }
}

fn remaining(deadline: Instant) -> Result<Duration, ClientError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(ClientError::Timeout)
    } else {
        Ok(left)
    }
}

/// Connects to the first address of `host` that answers, all within
/// `timeout`. Every failure names the address.
fn connect(host: &str, port: u16, timeout: Option<Duration>) -> Result<TcpStream, ClientError> {
    let failed = |source| ClientError::Connect {
        addr: match host.contains(':') {
            true => format!("[{host}]:{port}"), // an IPv6 address
            false => format!("{host}:{port}"),
        },
        source,
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut last_error = None;
    for addr in (host, port).to_socket_addrs().map_err(failed)? {
        let attempt = match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
            Some(left) if left.is_zero() => Err(io::Error::from(ErrorKind::TimedOut)),
            Some(left) => TcpStream::connect_timeout(&addr, left),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => {
                // Each call's request goes out in one write; Nagle would only
                // delay the tail of a put_many batch.
                stream.set_nodelay(true).map_err(failed)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => return Err(failed(e)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(failed(last_error.unwrap_or_else(|| {
        io::Error::new(ErrorKind::InvalidInput, "the name resolves to no address")
    })))
}

/// What `get` or `range` asks for: `*`, or a key the server stores.
fn query(key: &str) -> Result<Query<'_>, ClientError> {
    match key {
        "*" => Ok(Query::All),
        key if is_valid_key(key) => Ok(Query::Key(key)),
        _ => Err(ClientError::InvalidKey(key.to_owned())),
    }
}

fn check_put(key: &str, value: f64) -> Result<(), ClientError> {
    check_key(key)?;
    if !value.is_finite() {
        return Err(ClientError::InvalidValue(value));
    }
    Ok(())
}

/// A key to store or delete: valid, and not the wildcard.
fn check_key(key: &str) -> Result<(), ClientError> {
    if key == "*" || !is_valid_key(key) {
        return Err(ClientError::InvalidKey(key.to_owned()));
    }
    Ok(())
}

fn expect_empty_ok(answer: Response<'_>) -> Result<(), ClientError> {
    match answer {
        Response::Ok { body: [] } => Ok(()),
        _ => Err(ResponseError::UnexpectedData.into()),
    }
}
