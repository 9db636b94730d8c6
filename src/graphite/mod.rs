//! The Graphite ecosystem's languages, without I/O and without the engine:
//! what the Graphite plaintext listener and the graphite-web compatible HTTP
//! API are built on.
//!
//! | module | job |
//! | --- | --- |
//! | [`plaintext`] | one `<path> <value> [<timestamp>]` line to a point with a canonical key (tags sorted), or a precise cause; a decoder over the course protocol's bounded framer |
//! | [`path`] | graphite-web's glob path expressions (`*`, `?`, `[a-z]`, `{a,b}` per node) and the nodes `/metrics/find` lists |
//! | [`time`] | graphite-web's `from`/`until` times (`-1h`, `now`, `HH:MM_YYYYMMDD`…); UTC dates and their formatting |
//! | [`expr`] | render targets to an expression tree, with a reason and a position for malformed ones |
//! | [`series`] | a series on its step grid, with its tags |
//! | [`functions`] | evaluating targets over a fetch callback with graphite-web's functions; the `/functions` table |
//! | [`resub`] | Python's `re.sub`, for `aliasSub` |
//! | [`pyfmt`] | numbers as Python writes them (`repr`, `%g`) |
//! | [`pickle`] | the cluster format: `/metrics/find` and `/render` answers as the pickles graphite-web's remote finder and reader read |
//! | [`render`] | `/render` JSON and CSV, `/metrics/find` and `/metrics/expand` answers |
//! | [`svg`] | `/render?format=svg`: a line chart with axes, UTC time labels and a legend |
//!
//! A `/render` request flows: [`time::parse_time`] for `from`/`until` →
//! [`expr::parse`] per `target` → [`functions::evaluate`] with a fetch that
//! matches keys by [`path::PathPattern`] → [`render::render_json`].

pub mod expr;
pub mod functions;
pub mod path;
pub mod pickle;
pub mod plaintext;
pub mod pyfmt;
pub mod render;
pub mod resub;
pub mod series;
pub mod svg;
pub mod time;
