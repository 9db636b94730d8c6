//! What the server counts about itself, as named figures: for the `stats`
//! answer (encoded by `protocol::stats`), and stored as ordinary series by
//! `--self-metrics-interval` (the way carbon writes `carbon.agents.*`).

use crate::graphite::plaintext::PlaintextError;
use crate::journal;
use crate::protocol::RequestError;
use crate::store::{Refusal, Store};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Counts that only grow.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub connections_total: u64,
    /// Closed at once: over `--max-connections`, or out of descriptors.
    pub connections_rejected: u64,
    /// Closed by `--idle-timeout`.
    pub connections_idle_closed: u64,
    pub puts: u64,
    pub gets: u64,
    pub stats: u64,
    pub ranges: u64,
    pub deletes: u64,
    /// Invalid requests, by cause (indexed by [`RequestError::index`]).
    pub errors: [u64; RequestError::ALL.len()],
    /// Valid puts answered with an error because the log could not take them.
    pub not_stored: u64,
    /// Puts refused as older than the retention.
    pub refused_retention: u64,
    /// Puts refused at the memory limit.
    pub refused_memory: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Times a connection had to wait for the memory shared by all
    /// connections' answers (`--max-output-memory`).
    pub output_waits: u64,
    /// Valid points that came over the Graphite port, stored or not.
    pub graphite_points: u64,
    /// Of those, the ones the log refused or a failed commit took back.
    pub graphite_not_stored: u64,
    /// UDP datagrams that came to the Graphite port.
    pub graphite_datagrams: u64,
    /// Graphite lines skipped, by cause (indexed by [`PlaintextError::index`]).
    pub graphite_errors: [u64; PlaintextError::ALL.len()],
    /// HTTP requests answered (refused ones too), by route (indexed by
    /// [`HttpRoute::index`]).
    pub http_routes: [u64; HttpRoute::ALL.len()],
    /// HTTP answers by status (indexed as [`HTTP_STATUSES`]).
    pub http_statuses: [u64; HTTP_STATUSES.len()],
    /// `100 Continue` interim answers sent.
    pub http_continues: u64,
    /// HTTP answers whose body went out in slices (chunked).
    pub http_sliced: u64,
}

/// What an HTTP request asked for, as `stats` counts it: the routes of
/// `docs/PROTOCOL.md` section 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRoute {
    Render,
    /// `/metrics/find` and `/metrics`.
    Find,
    Expand,
    /// `/functions` and `/functions/<name>`.
    Functions,
    Version,
    /// `/tags/autoComplete/*`.
    Tags,
    /// `/`, `/app.js`, `/style.css`.
    Page,
    /// No such path, or a request refused before its path was read.
    None,
}

impl HttpRoute {
    pub const ALL: [HttpRoute; 8] = [
        HttpRoute::Render,
        HttpRoute::Find,
        HttpRoute::Expand,
        HttpRoute::Functions,
        HttpRoute::Version,
        HttpRoute::Tags,
        HttpRoute::Page,
        HttpRoute::None,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Its name in `stats`: `http.route.<name>`.
    pub fn name(self) -> &'static str {
        match self {
            HttpRoute::Render => "render",
            HttpRoute::Find => "find",
            HttpRoute::Expand => "expand",
            HttpRoute::Functions => "functions",
            HttpRoute::Version => "version",
            HttpRoute::Tags => "tags",
            HttpRoute::Page => "page",
            HttpRoute::None => "none",
        }
    }
}

/// Every status the HTTP API answers with, each counted as
/// `http.status.<code>`.
pub const HTTP_STATUSES: [u16; 9] = [200, 400, 404, 405, 411, 413, 417, 431, 501];

impl Counters {
    /// Counts a put the store refused, and gives its engine error.
    #[cold]
    pub fn refused(&mut self, refusal: Refusal) -> super::EngineError {
        match refusal {
            Refusal::Expired => {
                self.refused_retention += 1;
                super::EngineError::OlderThanRetention
            }
            Refusal::MemoryFull => {
                self.refused_memory += 1;
                super::EngineError::MemoryFull
            }
        }
    }
}

/// Figures of the moment, kept up to date by the event loop.
#[derive(Debug, Clone)]
pub struct Gauges {
    pub started: Instant,
    pub connections: usize,
    /// Answer bytes accepted but not yet taken by the sockets, and the
    /// bytes unfinished HTTP answers hold to write the rest, all
    /// connections together.
    pub pending_output: usize,
    /// `--max-output-memory`: the bound on `pending_output`, apart from the
    /// small output every connection may always have.
    pub max_output_memory: usize,
    /// None when the server keeps nothing on disk.
    pub journal: Option<journal::Status>,
}

impl Default for Gauges {
    fn default() -> Self {
        Gauges {
            started: Instant::now(),
            connections: 0,
            pending_output: 0,
            max_output_memory: crate::config::DEFAULT_MAX_OUTPUT_MEMORY,
            journal: None,
        }
    }
}

/// Every figure, in the order the `stats` answer lists them. Names are
/// dotted, lower case, with their unit where they have one. New figures are
/// added before the durable server's `log.*`, which stay last.
pub fn figures(counters: &Counters, gauges: &Gauges, store: &Store) -> Vec<(String, u64)> {
    let mut all = vec![
        ("uptime_seconds".to_owned(), gauges.started.elapsed().as_secs()),
        ("connections.current".to_owned(), gauges.connections as u64),
        ("connections.total".to_owned(), counters.connections_total),
        ("connections.rejected".to_owned(), counters.connections_rejected),
        ("connections.idle_closed".to_owned(), counters.connections_idle_closed),
        ("requests.put".to_owned(), counters.puts),
        ("requests.get".to_owned(), counters.gets),
        ("requests.stats".to_owned(), counters.stats),
        ("requests.range".to_owned(), counters.ranges),
        ("requests.delete".to_owned(), counters.deletes),
        ("requests.http".to_owned(), counters.http_routes.iter().sum()),
    ];
    for cause in RequestError::ALL {
        all.push((format!("errors.{}", cause.name()), counters.errors[cause.index()]));
    }
    all.extend([
        ("errors.not_stored".to_owned(), counters.not_stored),
        ("points".to_owned(), store.point_count() as u64),
        ("series".to_owned(), store.series_count() as u64),
        ("store.durable".to_owned(), u64::from(gauges.journal.is_some())),
        ("bytes.in".to_owned(), counters.bytes_in),
        ("bytes.out".to_owned(), counters.bytes_out),
        ("output.pending_bytes".to_owned(), gauges.pending_output as u64),
        ("output.memory_limit_bytes".to_owned(), gauges.max_output_memory as u64),
        ("output.memory_waits".to_owned(), counters.output_waits),
        ("graphite.points".to_owned(), counters.graphite_points),
        ("graphite.not_stored".to_owned(), counters.graphite_not_stored),
        ("graphite.datagrams".to_owned(), counters.graphite_datagrams),
    ]);
    for cause in PlaintextError::ALL {
        all.push((
            format!("graphite.errors.{}", cause.name()),
            counters.graphite_errors[cause.index()],
        ));
    }
    for route in HttpRoute::ALL {
        all.push((
            format!("http.route.{}", route.name()),
            counters.http_routes[route.index()],
        ));
    }
    for (code, count) in HTTP_STATUSES.iter().zip(counters.http_statuses) {
        all.push((format!("http.status.{code}"), count));
    }
    all.extend([
        ("http.continues".to_owned(), counters.http_continues),
        ("http.sliced".to_owned(), counters.http_sliced),
    ]);
    let (held, points) = (store.allocated_bytes() as u64, store.point_count() as u64);
    let freed = store.freed();
    all.extend([
        ("store.bytes".to_owned(), held),
        ("store.chunk_bytes".to_owned(), store.chunk_bytes() as u64),
        // Stats values are integers, and a point takes a byte or two.
        (
            "store.bytes_per_point_milli".to_owned(),
            (held as u128 * 1000).checked_div(points as u128).unwrap_or(0) as u64,
        ),
        (
            "store.memory_limit_bytes".to_owned(),
            store.policy().max_bytes.unwrap_or(0),
        ),
        ("points.expired".to_owned(), freed.expired_points),
        ("refused.retention".to_owned(), counters.refused_retention),
        ("refused.memory".to_owned(), counters.refused_memory),
        ("chunks.dropped_for_memory".to_owned(), freed.dropped_chunks),
        ("points.dropped_for_memory".to_owned(), freed.dropped_points),
    ]);
    if let Some(status) = &gauges.journal {
        let unix = |t: Option<SystemTime>| {
            t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs())
        };
        all.extend([
            ("log.bytes".to_owned(), status.log_bytes),
            ("log.generation".to_owned(), status.generation),
            ("log.last_fsync_unix".to_owned(), unix(status.last_fsync)),
            ("log.compactions".to_owned(), status.compactions),
            ("log.last_compaction_unix".to_owned(), unix(status.last_compaction)),
        ]);
    }
    all
}
