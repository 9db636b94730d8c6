//! metricsd: a metrics server and client library speaking the plain-text TCP
//! protocol of `docs/PROTOCOL.md` (`put palm.cpu 23.7 1150864247`,
//! `get palm.cpu`, `get *`).
//!
//! # Use the client
//!
//! A program that stores and reads points needs [`Client`] alone; depend on
//! the crate with `default-features = false` to build it without the
//! server. Start a server with `cargo run --release --bin metricsd`.
//!
//! ```no_run
//! use metricsd::{Client, ClientError};
//! use std::time::Duration;
//!
//! fn main() -> Result<(), ClientError> {
//!     // One connection for every call; the timeout bounds each call.
//!     let mut client = Client::new("127.0.0.1", 8888, Some(Duration::from_secs(15)))?;
//!     client.put("palm.cpu", 23.7, Some(1150864247))?;
//!     client.put("palm.cpu", 23.9, None)?; // None: the current second
//!     client.put_many(&[("eardrum.cpu", 3.0, Some(1150864250)), ("eardrum.cpu", 4.0, Some(1150864251))])?;
//!
//!     // Each key's (timestamp, value) points, sorted by timestamp.
//!     let palm = client.get("palm.cpu")?;
//!     println!("{:?}", palm["palm.cpu"]);
//!     for (key, points) in client.get("*")? {
//!         println!("{key}: {} points", points.len());
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Every call returns a [`ClientError`] on failure: a refused put is
//! [`ClientError::Server`] and the connection goes on; after an I/O error,
//! a timeout or an answer that is not the protocol, the connection is
//! [`ClientError::Broken`] until [`Client::reconnect`]. The [`client`]
//! module says more, and `docs/PROTOCOL.md` is the contract.
//!
//! # Map of the crate
//!
//! | module | job | I/O |
//! | --- | --- | --- |
//! | [`protocol`] | bytes ⇄ requests and responses: line framing, request parsing, answer encoding, incremental answer parsing | none |
//! | [`client`] | the blocking [`Client`] with typed [`ClientError`]s | blocking socket |
//! | [`clock`] | the wall clock in whole Unix seconds, for client and server | clock |
//! | [`config`] | every default setting with its reason; the reader of durations and sizes that flags take | none |
//! | [`graphite`] | the Graphite world's formats, pure: plaintext lines, path globs, from/until times, render targets and their functions, JSON/CSV/SVG answers | none |
//! | `aggregate` | buckets of time and their aggregates (`avg`, `min`, …), streamed from a window's points | none |
//! | `store` | in-memory series: points sorted by timestamp, last write wins | none |
//! | `engine` | the one owner of store, journal and counters, behind a few methods with typed errors; the `stats` figures | files, through the journal |
//! | `session` | one sans-IO session per connection and protocol (`course`; `graphite`, plaintext lines with no answers, and its UDP datagrams; `http`, the Graphite-compatible HTTP API and the page): bytes in, engine effects and answer bytes out, an explicit `Phase` | none |
//! | [`journal`] | durability: the log (CRC-32 records, group commit, fsync policies), snapshots, recovery, compaction | files |
//! | `server` | the single-threaded mio event loop over typed listeners (and Graphite's UDP socket) and a slab of connections (socket + readiness + session) | non-blocking sockets |
//! | `rate_limit` | warnings logged at most once a second, with a count of the rest | none |
//! | `test_support` | the test suites' seeded generator and temporary directories (tests only) | files |
//!
//! `store`, `engine`, `journal`, `session` and `server` (and the `metricsd`
//! binary) need the default feature `server`. A program that only talks to
//! a server depends on this crate with `default-features = false` and gets
//! `protocol` and `client` without mio. The `metricsctl` binary
//! (`src/bin/metricsctl/`, a command-line client for people) uses only
//! [`client`] and builds that way too.
//!
//! Requests flow: socket → shared read buffer → the connection's session
//! (`session::course`: `protocol::LineFramer` for bounded lines,
//! `protocol::parse_line` for a `Request` borrowing its key, then the
//! `engine` and the answer bytes; a long `get` answer in slices bounded by
//! the connection's output limit and by the output memory all connections
//! share) → the session's output → socket. A durable server
//! holds the answers to a turn's puts until `engine::Engine::commit` has
//! written the turn's batch to the log; if it fails they become errors.

#[cfg(feature = "server")]
mod aggregate;
pub mod client;
pub mod clock;
pub mod config;
#[cfg(feature = "server")]
mod engine;
#[cfg(feature = "server")]
pub mod graphite;
#[cfg(feature = "server")]
pub mod journal;
pub mod protocol;
#[cfg(feature = "server")]
mod rate_limit;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
mod session;
#[cfg(feature = "server")]
pub mod store;
#[cfg(test)]
mod test_support;

pub use client::{Client, ClientError};
