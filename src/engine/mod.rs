//! The engine: the one owner of the store, the journal and the server's
//! counters, behind a few methods. Protocols act on it through these
//! methods only and get [`EngineError`]s back, which each protocol puts
//! into words of its own (the course protocol's `error\nnot stored: ...`
//! answer, later an HTTP status or a Graphite counter).
//!
//! A durable engine collects the puts of one loop turn in a batch: they
//! are applied to the store at once (so the turn's `get`s see them), and
//! [`Engine::commit`] at the end of the turn writes them to the log in one
//! go, or takes them back out of the store if the log fails.

mod stats;

use crate::graphite::plaintext::PlaintextError;
use crate::journal::{self, AppendError, Batch, Journal, Undone};
use crate::protocol::RequestError;
use crate::rate_limit::RateLimitedWarning;
use crate::store::{Series, Store, EXPIRE_SLICE};
use stats::{Counters, Gauges};
pub use stats::{HttpRoute, HTTP_STATUSES};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why the engine did not do what it was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// A put was refused, or taken back, because the log cannot keep it.
    #[error("not stored: {0}")]
    NotStored(#[from] AppendError),
    /// A put older than `--retention`: it would be expired at once.
    #[error("not stored: older than retention")]
    OlderThanRetention,
    /// A put past `--max-memory` (under drop-oldest: with no old chunk left
    /// to drop).
    #[error("not stored: memory limit reached")]
    MemoryFull,
}

/// Something the server counts that happened outside the engine's own
/// methods: traffic and connections, seen by the event loop, and invalid
/// requests, seen by the sessions.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    /// A connection was accepted (and perhaps closed at once).
    Accepted,
    /// A connection was closed at once: over the connection cap, or out of
    /// descriptors.
    Rejected,
    /// Connections closed by the idle timeout.
    IdleClosed(usize),
    /// Request bytes read.
    BytesIn(usize),
    /// Answer bytes written.
    BytesOut(usize),
    /// An invalid request (logged, at most once a second).
    BadRequest { cause: RequestError, peer: SocketAddr },
    /// A connection began to wait for room in the memory all connections'
    /// answers share.
    OutputWait,
    /// A Graphite plaintext line skipped (logged, at most once a second).
    BadGraphiteLine { cause: PlaintextError, peer: SocketAddr },
    /// A UDP datagram of this many bytes came to the Graphite port.
    GraphiteDatagram(usize),
    /// An HTTP request was answered with `status`; `sliced`: its body
    /// goes out in slices.
    HttpAnswer {
        route: HttpRoute,
        status: u16,
        sliced: bool,
    },
    /// An HTTP `100 Continue` was sent.
    HttpContinue,
}

/// The store, its journal when durable, and what the server counts.
pub struct Engine {
    store: Store,
    /// None when the server keeps nothing on disk.
    log: Option<Log>,
    counters: Counters,
    gauges: Gauges,
    warn_bad_request: RateLimitedWarning,
    warn_bad_graphite_line: RateLimitedWarning,
    warn_commit: RateLimitedWarning,
    /// Where the expiry pass under way goes on; None between passes.
    expiry: Option<Arc<str>>,
}

/// The journal and the turn's puts waiting for it.
struct Log {
    journal: Journal,
    batch: Batch,
    /// What the batch's deletes took out of the store, in their order, to
    /// put back if the log cannot take the batch.
    deleted: Vec<Option<Series>>,
    /// Set between turns when puts cannot be made durable: they are refused
    /// with this cause instead of being applied.
    refusal: Option<AppendError>,
    /// Of the batch's puts, those that came over the Graphite port: counted
    /// in `graphite.not_stored` too if the commit fails.
    graphite_points: u64,
}

impl Engine {
    /// An engine whose puts are not logged, starting from `store`.
    pub fn in_memory(store: Store) -> Engine {
        Engine {
            store,
            log: None,
            counters: Counters::default(),
            gauges: Gauges::default(),
            warn_bad_request: RateLimitedWarning::default(),
            warn_bad_graphite_line: RateLimitedWarning::default(),
            warn_commit: RateLimitedWarning::default(),
            expiry: None,
        }
    }

    /// Locks the data directory and rebuilds the store from it, into
    /// `store` (empty), whose policy (retention, memory limit) applies to
    /// what is loaded.
    pub fn open_into(options: &journal::Options, store: Store) -> Result<Engine, journal::Error> {
        let (journal, store) = Journal::open_into(options, store)?;
        let mut engine = Engine::in_memory(store);
        engine.gauges.journal = Some(journal.status());
        engine.log = Some(Log {
            journal,
            batch: Batch::default(),
            deleted: Vec::new(),
            refusal: None,
            graphite_points: 0,
        });
        Ok(engine)
    }

    /// Stores one point for a client (counted as a put request), or says
    /// why it cannot be kept.
    #[inline]
    pub fn put(&mut self, key: &str, timestamp: i64, value: f64) -> Result<(), EngineError> {
        self.counters.puts += 1;
        let stored = self.store_point(key, timestamp, value);
        if let Err(EngineError::NotStored(_)) = stored {
            self.counters.not_stored += 1;
        }
        stored
    }

    /// Stores one point that came over the Graphite port (counted in
    /// `graphite.points`, not as a put request), or says why it cannot be
    /// kept. Logged and taken back exactly like a put.
    #[inline]
    pub fn put_graphite(&mut self, key: &str, timestamp: i64, value: f64) -> Result<(), EngineError> {
        self.counters.graphite_points += 1;
        let stored = self.store_point(key, timestamp, value);
        match (&stored, &mut self.log) {
            (Err(EngineError::NotStored(_)), _) => {
                self.counters.not_stored += 1;
                self.counters.graphite_not_stored += 1;
            }
            // Counted in `refused.*` already, like a put's.
            (Err(EngineError::OlderThanRetention | EngineError::MemoryFull), _) => {
                self.counters.graphite_not_stored += 1;
            }
            (Ok(()), Some(log)) => log.graphite_points += 1,
            (Ok(()), None) => {}
        }
        stored
    }

    /// Stores points of the server's own (not counted as requests); stops
    /// at the first refusal.
    pub fn put_batch<K: AsRef<str>>(
        &mut self,
        points: impl IntoIterator<Item = (K, i64, f64)>,
    ) -> Result<(), EngineError> {
        for (key, timestamp, value) in points {
            self.store_point(key.as_ref(), timestamp, value)?;
        }
        Ok(())
    }

    // Always: it has two callers, and without the hint the put path pays a
    // call for it (32 instructions a put under callgrind).
    #[inline(always)]
    fn store_point(&mut self, key: &str, timestamp: i64, value: f64) -> Result<(), EngineError> {
        match &mut self.log {
            None => {
                self.store
                    .try_put(key, timestamp, value)
                    .map_err(|r| self.counters.refused(r))?;
            }
            Some(log) => {
                if let Some(cause) = &log.refusal {
                    return Err(EngineError::NotStored(cause.clone()));
                }
                let replaced = self
                    .store
                    .try_put(key, timestamp, value)
                    .map_err(|r| self.counters.refused(r))?;
                log.batch.push(key, timestamp, value, replaced);
            }
        }
        Ok(())
    }

    /// Frees expired points, a slice at a time (at most
    /// [`EXPIRE_SLICE`] series visited and chunks freed): the first call of
    /// a pass moves the horizon to `now` (Unix seconds) minus the
    /// retention, and later calls go on through the keys. Returns whether
    /// the pass is unfinished (the loop should call again soon); false at
    /// once without a retention.
    pub fn expire_step(&mut self, now: i64) -> bool {
        if self.store.policy().retention.is_none() {
            return false;
        }
        let from = self.expiry.take();
        if from.is_none() {
            self.store.set_now(now);
        }
        self.expiry = self.store.expire(from.as_ref(), EXPIRE_SLICE);
        self.expiry.is_some()
    }

    /// The oldest timestamp a read may return (see [`Store::horizon`]).
    #[inline]
    pub fn horizon(&self) -> i64 {
        self.store.horizon()
    }

    /// Removes every point of `key` for a client (counted as a delete
    /// request), whether or not it had any, or says why it cannot be kept.
    /// Logged like a put, and undone like one if the log fails.
    pub fn delete(&mut self, key: &str) -> Result<(), EngineError> {
        self.counters.deletes += 1;
        match &mut self.log {
            None => {
                self.store.take_series(key);
            }
            Some(log) => {
                if let Some(cause) = &log.refusal {
                    self.counters.not_stored += 1;
                    return Err(EngineError::NotStored(cause.clone()));
                }
                log.deleted.push(self.store.take_series(key));
                log.batch.push_delete(key);
            }
        }
        Ok(())
    }

    /// The series of `key`, for a client's `get` (counted as a get request).
    #[inline]
    pub fn get(&mut self, key: &str) -> Option<&Series> {
        self.counters.gets += 1;
        self.store.get(key)
    }

    /// Counts a client's `get *`, which then reads with
    /// [`Engine::series_from`].
    pub fn get_all(&mut self) {
        self.counters.gets += 1;
    }

    /// The series of `key`, for a client's `range` (counted as a range
    /// request).
    #[inline]
    pub fn range(&mut self, key: &str) -> Option<&Series> {
        self.counters.ranges += 1;
        self.store.get(key)
    }

    /// Counts a client's `range *`, which then reads with
    /// [`Engine::series_from`].
    pub fn range_all(&mut self) {
        self.counters.ranges += 1;
    }

    /// Every series from the key `start` on, in key order (see
    /// [`Store::series_from`]).
    #[inline]
    pub fn series_from<'a>(&'a self, start: Option<&'a str>) -> impl Iterator<Item = (&'a Arc<str>, &'a Series)> + 'a {
        self.store.series_from(start)
    }

    /// The series of `key` again, to go on with an answer already counted.
    #[inline]
    pub fn series(&self, key: &str) -> Option<&Series> {
        self.store.get(key)
    }

    /// Every figure for a client's `stats` (counted as a stats request), in
    /// the order of the answer.
    pub fn stats(&mut self) -> Vec<(String, u64)> {
        self.counters.stats += 1;
        self.figures()
    }

    /// Every figure, uncounted (for `--self-metrics-interval`).
    pub fn figures(&self) -> Vec<(String, u64)> {
        stats::figures(&self.counters, &self.gauges, &self.store)
    }

    /// Counts an event seen outside the engine.
    #[inline]
    pub fn count(&mut self, event: Event) {
        let counters = &mut self.counters;
        match event {
            Event::Accepted => counters.connections_total += 1,
            Event::Rejected => counters.connections_rejected += 1,
            Event::IdleClosed(n) => counters.connections_idle_closed += n as u64,
            Event::BytesIn(n) => counters.bytes_in += n as u64,
            Event::BytesOut(n) => counters.bytes_out += n as u64,
            Event::OutputWait => counters.output_waits += 1,
            Event::BadRequest { cause, peer } => self.bad_request(cause, peer),
            Event::BadGraphiteLine { cause, peer } => self.bad_graphite_line(cause, peer),
            Event::GraphiteDatagram(n) => {
                counters.graphite_datagrams += 1;
                counters.bytes_in += n as u64;
            }
            Event::HttpAnswer { route, status, sliced } => {
                counters.http_routes[route.index()] += 1;
                if let Some(at) = HTTP_STATUSES.iter().position(|&code| code == status) {
                    counters.http_statuses[at] += 1;
                }
                counters.http_sliced += u64::from(sliced);
            }
            Event::HttpContinue => counters.http_continues += 1,
        }
    }

    /// Kept out of [`Engine::count`], so that the counting of traffic on
    /// every read and write inlines to one addition.
    #[cold]
    #[inline(never)]
    fn bad_request(&mut self, cause: RequestError, peer: SocketAddr) {
        self.counters.errors[cause.index()] += 1;
        self.warn_bad_request
            .warn(format_args!("bad request from {peer}: {cause}"));
    }

    /// Out of [`Engine::count`] for the same reason as `bad_request`.
    #[cold]
    #[inline(never)]
    fn bad_graphite_line(&mut self, cause: PlaintextError, peer: SocketAddr) {
        self.counters.graphite_errors[cause.index()] += 1;
        self.warn_bad_graphite_line
            .warn(format_args!("bad graphite line from {peer}: {cause}"));
    }

    /// The event loop's gauge of open connections.
    #[inline]
    pub fn set_connections(&mut self, connections: usize) {
        self.gauges.connections = connections;
    }

    /// A connection's answer bytes not yet taken by its socket (and the
    /// bytes its unfinished answer holds to write the rest) went from
    /// `before` to `after` (the gauge sums them over all connections).
    #[inline]
    pub fn output_changed(&mut self, before: usize, after: usize) {
        let gauge = &mut self.gauges.pending_output;
        *gauge = *gauge + after - before;
    }

    /// Sets `--max-output-memory`: how many unsent answer bytes all
    /// connections together may have (apart from the small output each may
    /// always have; see `session`).
    pub fn limit_output(&mut self, bytes: usize) {
        self.gauges.max_output_memory = bytes;
    }

    /// Answer bytes the connections together may still produce (or hold
    /// for an unfinished answer) under `--max-output-memory`. A limit of 0
    /// counts as 1 here: a waiting `/render` starts once no connection has
    /// anything unsent or held, rather than never.
    #[inline]
    pub fn output_room(&self) -> usize {
        self.gauges
            .max_output_memory
            .max(1)
            .saturating_sub(self.gauges.pending_output)
    }

    /// Puts and deletes waiting for the turn's commit: grows by one with
    /// every logged one, so a session can tell which of its answers wait for the commit.
    #[inline]
    pub fn unlogged(&self) -> usize {
        self.log.as_ref().map_or(0, |log| log.batch.len())
    }

    /// At the start of a turn: a background fsync may have failed since the
    /// last one, and puts are refused from now on.
    pub fn begin_turn(&mut self) {
        if let Some(log) = &mut self.log {
            log.refusal = log.journal.refusal();
        }
    }

    /// The end of a turn: the turn's puts go to the log in one write. If
    /// the log cannot take them they are taken back out of the store (which
    /// must never hold what the log does not, or a later snapshot would make
    /// a refused put permanent) and the error is for each of their answers.
    pub fn commit(&mut self) -> Result<(), EngineError> {
        let Some(log) = &mut self.log else {
            return Ok(());
        };
        let outcome = log.journal.commit(&mut log.batch);
        if let Err(cause) = &outcome {
            let puts = log.batch.len();
            self.warn_commit.warn(format_args!(
                "{puts} puts and deletes answered with an error: not stored: {cause}"
            ));
            self.counters.not_stored += puts as u64;
            self.counters.graphite_not_stored += log.graphite_points;
            for undone in log.batch.undo() {
                match undone {
                    Undone::Put {
                        key,
                        timestamp,
                        replaced: Some(value),
                    } => {
                        self.store.put(key, timestamp, value);
                    }
                    Undone::Put {
                        key,
                        timestamp,
                        replaced: None,
                    } => self.store.remove(key, timestamp),
                    Undone::Delete { key } => {
                        // Undone last first, as they were pushed.
                        if let Some(series) = log.deleted.pop().flatten() {
                            self.store.restore_series(key, series);
                        }
                    }
                }
            }
        }
        log.batch.clear();
        log.deleted.clear();
        log.graphite_points = 0;
        log.refusal = log.journal.refusal();
        self.gauges.journal = Some(log.journal.status());
        outcome.map_err(EngineError::NotStored)
    }

    /// About once a second, between turns: a durable engine looks whether
    /// its data directory is still there (if not, puts are refused from now
    /// on), and the counts of warnings held back are logged.
    pub fn chores(&mut self) {
        if let Some(log) = &mut self.log {
            log.journal.check_dir();
            log.refusal = log.journal.refusal();
        }
        self.warn_bad_request.flush();
        self.warn_bad_graphite_line.flush();
        self.warn_commit.flush();
    }

    /// Work between turns: moves a compaction a slice further (starting one
    /// when the log has grown). Returns whether it wants the loop back at
    /// once.
    pub fn compaction_step(&mut self) -> bool {
        match &mut self.log {
            Some(log) => log.journal.tick(&self.store),
            None => false,
        }
    }

    /// Whether a snapshot is being finished off the loop (the loop should
    /// look again before long even when idle).
    pub fn compaction_finishing(&self) -> bool {
        self.log.as_ref().is_some_and(|log| log.journal.finishing())
    }

    /// The server is stopping: no compaction holds the stop up.
    pub fn stop_compacting(&mut self) {
        if let Some(log) = &mut self.log {
            log.journal.stop_compacting();
        }
    }

    /// Whether puts are logged.
    pub fn is_durable(&self) -> bool {
        self.log.is_some()
    }

    /// Graceful shutdown: the log is synced whatever the fsync policy. The
    /// turn must have been committed.
    pub fn close(self) -> io::Result<()> {
        debug_assert_eq!(self.unlogged(), 0, "closed with puts not committed");
        match self.log {
            Some(log) => log.journal.close(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
impl Engine {
    /// A durable engine over the empty data directory `dir`, with
    /// `--fsync never` so that no thread is started.
    pub fn durable_in(dir: &std::path::Path) -> Engine {
        let options = journal::Options {
            fsync: journal::Fsync::Never,
            ..journal::Options::new(dir)
        };
        Engine::open_into(&options, Store::new()).expect("open a fresh data directory")
    }

    /// The store itself, for unit tests that fill or inspect it directly.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Makes the next commit fail as a full disk would (see
    /// `Journal::break_log_for_test`).
    pub fn break_log_for_test(&mut self) {
        let log = self.log.as_mut().expect("a durable engine");
        log.journal.break_log_for_test();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Point;
    use crate::test_support::TempDir;

    fn figure(engine: &Engine, name: &str) -> u64 {
        let figures = engine.figures();
        let found = figures.iter().find(|(n, _)| n == name);
        found.unwrap_or_else(|| panic!("no figure {name}")).1
    }

    #[test]
    fn requests_and_events_are_counted_where_they_happen() {
        let mut engine = Engine::in_memory(Store::new());
        assert_eq!(engine.put("a", 1, 1.0).map_err(|e| e.to_string()), Ok(()));
        engine.put_batch([("self.a", 1, 2.0), ("self.b", 1, 3.0)]).unwrap();
        assert!(engine.get("a").is_some());
        assert!(engine.get("none").is_none());
        engine.get_all();
        assert!(engine.range("a").is_some());
        engine.range_all();
        let peer = "127.0.0.1:9".parse().unwrap();
        engine.count(Event::BadRequest {
            cause: RequestError::UnknownCommand,
            peer,
        });
        engine.count(Event::BytesIn(10));
        engine.count(Event::Accepted);
        engine.output_changed(0, 7);
        let stats = engine.stats();
        let count = |name: &str| stats.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        // The server's own puts are stored but are not requests.
        assert_eq!(count("requests.put"), Some(1));
        assert_eq!(count("points"), Some(3));
        assert_eq!(count("requests.get"), Some(3));
        assert_eq!(count("requests.range"), Some(2));
        // The stats request counts itself.
        assert_eq!(count("requests.stats"), Some(1));
        assert_eq!(count("errors.unknown_command"), Some(1));
        assert_eq!(count("bytes.in"), Some(10));
        assert_eq!(count("connections.total"), Some(1));
        assert_eq!(count("output.pending_bytes"), Some(7));
        assert_eq!(count("log.bytes"), None, "an in-memory engine has no log");
        // Reading the figures for self-metrics counts nothing.
        assert_eq!(figure(&engine, "requests.stats"), 1);
    }

    fn points_of(engine: &Engine, key: &str) -> Vec<Point> {
        engine.series(key).map(|s| s.iter().collect()).unwrap_or_default()
    }

    #[test]
    fn a_delete_is_logged_like_a_put_and_replayed_in_order() {
        let dir = TempDir::new("engine-delete");
        let mut engine = Engine::durable_in(&dir.0);
        engine.begin_turn();
        engine.put("a", 1, 1.0).unwrap();
        engine.put("b", 1, 2.0).unwrap();
        engine.commit().unwrap();
        engine.begin_turn();
        engine.delete("a").unwrap();
        engine.delete("never.there").unwrap();
        assert_eq!(engine.unlogged(), 2, "a delete waits for the commit like a put");
        engine.put("a", 2, 3.0).unwrap();
        assert_eq!(points_of(&engine, "a"), [(2, 3.0)]);
        assert_eq!(figure(&engine, "points"), 2);
        engine.commit().unwrap();
        assert_eq!(figure(&engine, "requests.delete"), 2);
        assert_eq!(figure(&engine, "requests.put"), 3);
        engine.close().unwrap();

        let reopened = Engine::durable_in(&dir.0);
        assert_eq!(points_of(&reopened, "a"), [(2, 3.0)]);
        assert_eq!(points_of(&reopened, "b"), [(1, 2.0)]);
        assert_eq!(figure(&reopened, "points"), 2);
    }

    #[test]
    fn a_delete_the_log_refuses_is_taken_back_with_the_puts_around_it() {
        let dir = TempDir::new("engine-delete-undo");
        let mut engine = Engine::durable_in(&dir.0);
        engine.begin_turn();
        for t in 0..5 {
            engine.put("a", t, t as f64).unwrap();
        }
        engine.commit().unwrap();
        engine.begin_turn();
        engine.put("a", 1, 10.0).unwrap();
        engine.delete("a").unwrap();
        engine.put("a", 7, 7.0).unwrap();
        engine.delete("a").unwrap();
        engine.put("a", 8, 8.0).unwrap();
        // The log's file goes read-only under it: the commit fails.
        engine.break_log_for_test();
        assert!(engine.commit().is_err());
        assert_eq!(
            points_of(&engine, "a"),
            [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
        );
        assert_eq!(figure(&engine, "points"), 5);
    }

    #[test]
    fn a_removed_data_directory_is_noticed_by_the_chores_and_puts_are_refused() {
        let dir = TempDir::new("engine-dir-gone");
        let mut engine = Engine::durable_in(&dir.0);
        engine.chores();
        engine.begin_turn();
        engine.put("a", 1, 1.0).unwrap();
        engine.commit().unwrap();
        std::fs::remove_dir_all(&dir.0).unwrap();
        engine.chores();
        engine.begin_turn();
        let refused = engine.put("a", 2, 2.0).map_err(|e| e.to_string());
        let path = std::path::absolute(&dir.0).unwrap();
        let want = format!("not stored: data directory {} was removed or replaced", path.display());
        assert_eq!(refused, Err(want.clone()));
        assert_eq!(engine.delete("a").map_err(|e| e.to_string()), Err(want));
        assert_eq!(points_of(&engine, "a"), [(1, 1.0)]);
        assert_eq!(figure(&engine, "errors.not_stored"), 2);
    }

    #[test]
    fn retention_refuses_old_puts_and_expiry_frees_in_slices() {
        use crate::store::{Policy, CHUNK_POINTS};
        let policy = Policy {
            retention: Some(std::time::Duration::from_secs(1600)),
            ..Policy::default()
        };
        let mut engine = Engine::in_memory(Store::with_policy(policy, 10_000));
        // Whole rounds of the 400 seconds below, over two slices' worth.
        let keys = 400 * (2 * EXPIRE_SLICE as i64 / 400 + 1);
        for k in 0..keys {
            engine.put(&format!("k{k}"), 9_100 + k % 400, 1.0).unwrap();
        }
        // One long series: a chunk's time, twice, the first chunk before
        // 9,300.
        const { assert!(CHUNK_POINTS < 800) };
        for t in 0..2 * CHUNK_POINTS as i64 {
            engine.put("long", 8_500 + t, 2.0).unwrap();
        }
        assert!(matches!(
            engine.put("k0", 8_399, 1.0),
            Err(EngineError::OlderThanRetention)
        ));
        assert_eq!(figure(&engine, "refused.retention"), 1);
        // 900 s later the horizon is 9,300: 200 of the 400 seconds of the
        // short series have expired, and the first chunk of "long".
        let mut slices = 1;
        while engine.expire_step(10_900) {
            slices += 1;
        }
        assert_eq!(engine.horizon(), 9_300);
        let series = keys as usize + 1;
        assert_eq!(
            slices,
            series.div_ceil(EXPIRE_SLICE),
            "a slice visits at most EXPIRE_SLICE series"
        );
        assert_eq!(figure(&engine, "series"), keys as u64 / 2 + 1);
        assert_eq!(figure(&engine, "points.expired"), keys as u64 / 2 + CHUNK_POINTS as u64);
        assert_eq!(figure(&engine, "points"), keys as u64 / 2 + CHUNK_POINTS as u64);
        assert!(engine.get("k0").is_none());
        // Without a retention there is nothing to do.
        assert!(!Engine::in_memory(Store::new()).expire_step(i64::MAX));
    }

    #[test]
    fn the_memory_figures_follow_the_store() {
        use crate::store::{OnFull, Policy};
        let policy = Policy {
            max_bytes: Some(40_000),
            on_full: OnFull::DropOldest,
            ..Policy::default()
        };
        let mut engine = Engine::in_memory(Store::with_policy(policy, 0));
        for t in 0..20_000 {
            engine.put("k", t, (t * 7919 % 10_007) as f64 / 3.0).unwrap();
        }
        let held = figure(&engine, "store.bytes");
        assert!(held <= 40_000 + 8 * 1024, "{held}");
        assert!(figure(&engine, "store.chunk_bytes") < held);
        assert_eq!(figure(&engine, "store.memory_limit_bytes"), 40_000);
        let points = figure(&engine, "points");
        assert_eq!(figure(&engine, "store.bytes_per_point_milli"), held * 1000 / points);
        let dropped = figure(&engine, "chunks.dropped_for_memory");
        assert!(dropped > 0);
        assert_eq!(figure(&engine, "points.dropped_for_memory"), 20_000 - points);
        assert_eq!(figure(&engine, "refused.memory"), 0);
        let empty = Engine::in_memory(Store::new());
        assert_eq!(figure(&empty, "store.bytes_per_point_milli"), 0);
        assert_eq!(figure(&empty, "store.memory_limit_bytes"), 0, "0: no limit");
    }

    #[test]
    fn a_durable_engine_batches_the_turns_puts_and_commit_logs_them() {
        let dir = TempDir::new("engine-commit");
        let mut engine = Engine::durable_in(&dir.0);
        assert!(engine.is_durable());
        engine.begin_turn();
        engine.put("a", 1, 1.5).unwrap();
        engine.put("a", 2, 2.5).unwrap();
        // Applied at once, so the turn's gets see them; logged at its end.
        assert_eq!(engine.series("a").map(|s| s.len()), Some(2));
        assert_eq!(engine.unlogged(), 2);
        let logged = figure(&engine, "log.bytes");
        engine.commit().unwrap();
        assert_eq!(engine.unlogged(), 0);
        assert!(figure(&engine, "log.bytes") > logged);
        engine.close().unwrap();

        let reopened = Engine::durable_in(&dir.0);
        let points: Vec<_> = reopened.series("a").map(|s| s.iter().collect()).unwrap_or_default();
        assert_eq!(points, vec![(1, 1.5), (2, 2.5)]);
    }
}
