//! The Graphite ecosystem's languages, without I/O and without the engine:
//! what the Graphite plaintext listener and the graphite-web compatible HTTP
//! API are built on.
//!
//! - [`plaintext`]: one `<path> <value> [<timestamp>]` line to a point with a
//!   canonical key (tags sorted), or a precise [`PlaintextError`].
//! - [`path`]: graphite-web's glob path expressions (`*`, `?`, `[a-z]`,
//!   `{a,b}` per dot-separated node) and the nodes `/metrics/find` lists.
//! - [`time`]: graphite-web's `from`/`until` (`-1h`, `now`, `HH:MM_YYYYMMDD`…).
//!
//! [`PlaintextError`]: plaintext::PlaintextError

pub mod expr;
pub mod functions;
pub mod path;
pub mod plaintext;
pub mod pyfmt;
pub mod resub;
pub mod series;
pub mod time;
