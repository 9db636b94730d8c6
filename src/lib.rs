//! metricsd: a metrics server and client library speaking the plain-text TCP
//! protocol of `PROTOCOL.md` (`put palm.cpu 23.7 1150864247`, `get palm.cpu`,
//! `get *`).
//!
//! # Map of the crate
//!
//! | module | job | I/O |
//! | --- | --- | --- |
//! | [`protocol`] | bytes ⇄ requests and responses: line framing, request parsing, answer encoding, incremental answer parsing | none |
//! | [`client`] | the blocking [`Client`] with typed [`ClientError`]s | blocking socket |
//! | `store` | in-memory series: points sorted by timestamp, last write wins | none |
//! | `db` | the store plus the loop turn's batch of puts waiting for the log | none |
//! | [`journal`] | durability: the log (CRC-32 records, group commit, fsync policies), snapshots, recovery, compaction | files |
//! | `server` | the single-threaded mio event loop over a slab of connections | non-blocking sockets |
//! | `rate_limit` | warnings logged at most once a second, with a count of the rest | none |
//! | `stats` | the server's counters and gauges: the `stats` answer and `--self-metrics-interval` | none |
//!
//! `store`, `db`, `journal` and `server` (and the `metricsd` binary) need the default feature
//! `server`. A program that only talks to a server depends on this crate with
//! `default-features = false` and gets `protocol` and `client` without mio.
//! The `metricsctl` binary (`src/bin/metricsctl/`, a command-line client for
//! people) uses only [`client`] and builds that way too.
//!
//! Requests flow: socket → shared read buffer → `protocol::LineFramer` (bounded
//! lines) → `protocol::parse_line` (a `Request` borrowing its key) →
//! `server::handler` (store + answer bytes; a long `get` answer in slices
//! bounded by the connection's output limit) → connection output buffer →
//! socket. A durable server holds the answers to a turn's puts until
//! `journal::Journal::commit` has written the turn's batch to the log.

pub mod client;
#[cfg(feature = "server")]
mod db;
pub mod graphite;
#[cfg(feature = "server")]
pub mod journal;
pub mod protocol;
#[cfg(feature = "server")]
mod rate_limit;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
mod stats;
#[cfg(feature = "server")]
pub mod store;
#[cfg(test)]
mod testutil;

pub use client::{Client, ClientError};
