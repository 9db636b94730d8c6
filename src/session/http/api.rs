//! The graphite-web compatible routes and the page: one request's fields
//! to one answer, reading the engine.
//!
//! | path | methods | answer |
//! | --- | --- | --- |
//! | `/render` | GET, HEAD, POST | series as JSON, CSV or an SVG chart; a pickle for graphite-web's cluster (`cluster`) |
//! | `/metrics/find`, `/metrics` | GET, HEAD, POST | the nodes a glob names, graphite-web's tree JSON; a pickle for its cluster |
//! | `/metrics/expand` | GET, HEAD, POST | the full paths globs name |
//! | `/functions`, `/functions/<name>` | GET, HEAD | the supported functions, graphite-web's JSON |
//! | `/version` | GET, HEAD | the graphite-web version this API follows |
//! | `/tags/autoComplete/tags`, `…/values` | GET, HEAD | `[]`: no tag index |
//! | `/`, `/app.js`, `/style.css` | GET, HEAD | the page |

use super::cluster;
use super::fetch::Fetcher;
use super::form::Fields;
use super::head::{Method, Request};
use super::reply::{Reply, Status, JSON, TEXT};
use crate::engine::Engine;
use crate::graphite::expr;
use crate::graphite::functions::{evaluate, function_json, functions_json};
use crate::graphite::path::PathPattern;
use crate::graphite::render::{
    consolidate_to_max_data_points, expand_json, find_json, render_csv, render_json, JsonOptions,
};
use crate::graphite::svg::{render_svg, SvgOptions};
use crate::graphite::time::parse_time;

/// The graphite-web release whose API this follows, answered by `/version`:
/// Grafana's "1.1.x" setting expects 1.1, and 1.1.10 is the last release.
pub const GRAPHITE_VERSION: &str = "1.1.10";
/// The largest answer body built: 32 MiB, eight times the default
/// `--max-pending-output`, about a million JSON points (100 series of 2.8
/// hours at 1 s, or of a week at 1 minute, unconsolidated). Larger: a 400
/// that says to narrow the request. Grafana asks for `maxDataPoints`, so its
/// answers are far smaller.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;
/// The largest SVG side, in pixels: larger than any screen, small enough
/// that an axis of labels stays a few KB.
pub const MAX_IMAGE_SIDE: u32 = 8192;

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// What a path allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allows {
    Read,
    ReadAndPost,
}

/// The answer to `request`; `now` is the current Unix second.
pub fn answer(request: &Request<'_>, engine: &Engine, now: i64) -> Reply {
    // graphite-web's URL patterns take an optional trailing slash.
    let path = match request.path {
        "/" => "/",
        path => path.strip_suffix('/').unwrap_or(path),
    };
    let Some(allows) = allows(path) else {
        return Reply::error(Status::NotFound, &format!("no such path: {}", request.path));
    };
    let allowed = match request.method {
        Method::Get | Method::Head => true,
        Method::Post => allows == Allows::ReadAndPost,
        Method::Other => false,
    };
    if !allowed {
        let allow = match allows {
            Allows::Read => "GET, HEAD",
            Allows::ReadAndPost => "GET, HEAD, POST",
        };
        return Reply {
            allow: Some(allow),
            ..Reply::error(Status::MethodNotAllowed, &format!("{} allows {allow}", request.path))
        };
    }
    let mut fields = Fields::default();
    fields.add(request.query.as_bytes());
    if request.form_body {
        fields.add(request.body);
    }
    let reply = route(path, &fields, engine, now).unwrap_or_else(|reason| Reply::error(Status::BadRequest, &reason));
    match reply.body.len() {
        len if len > MAX_ANSWER_BYTES => Reply::error(
            Status::BadRequest,
            &format!("the answer of {len} bytes is over {MAX_ANSWER_BYTES}: ask for a shorter range, fewer series or maxDataPoints"),
        ),
        _ => reply,
    }
}

fn allows(path: &str) -> Option<Allows> {
    match path {
        "/render" | "/metrics/find" | "/metrics" | "/metrics/expand" => Some(Allows::ReadAndPost),
        "/functions"
        | "/version"
        | "/tags/autoComplete/tags"
        | "/tags/autoComplete/values"
        | "/"
        | "/app.js"
        | "/style.css" => Some(Allows::Read),
        path if path.starts_with("/functions/") => Some(Allows::Read),
        _ => None,
    }
}

fn route(path: &str, fields: &Fields, engine: &Engine, now: i64) -> Result<Reply, String> {
    Ok(match path {
        // graphite-web's cluster requests (`format=pickle`): cluster.rs.
        "/render" if cluster::wants(fields) => cluster::render(fields, engine, now)?,
        "/metrics/find" | "/metrics" if cluster::wants(fields) => cluster::find(fields, engine, now)?,
        "/render" => render(fields, engine, now)?,
        "/metrics/find" | "/metrics" => find(fields, engine)?,
        "/metrics/expand" => expand(fields, engine)?,
        "/functions" => Reply::ok(JSON, functions_json(flag(fields, "grouped")).into_bytes()),
        "/version" => Reply::ok(TEXT, GRAPHITE_VERSION.as_bytes()),
        "/tags/autoComplete/tags" | "/tags/autoComplete/values" => Reply::ok(JSON, &b"[]"[..]),
        "/" => Reply::ok("text/html; charset=utf-8", INDEX_HTML.as_bytes()),
        "/app.js" => Reply::ok("text/javascript; charset=utf-8", APP_JS.as_bytes()),
        "/style.css" => Reply::ok("text/css; charset=utf-8", STYLE_CSS.as_bytes()),
        _ => {
            let name = path.strip_prefix("/functions/").unwrap_or(path);
            match function_json(name) {
                Some(json) => Reply::ok(JSON, json.into_bytes()),
                None => Reply::error(Status::NotFound, &format!("no such function: {name}")),
            }
        }
    })
}

/// A yes/no field: present and not `0`, `false` or empty.
fn flag(fields: &Fields, name: &str) -> bool {
    fields
        .get(name)
        .is_some_and(|v| !matches!(v, "" | "0" | "false" | "False"))
}

fn number<T: std::str::FromStr>(fields: &Fields, name: &str) -> Result<Option<T>, String> {
    match fields.get(name) {
        None | Some("") => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("invalid {name} {text:?}")),
    }
}

/// `/render`: every `target` evaluated between `from` (default `-1d`) and
/// `until` (default `now`), as graphite-web does.
fn render(fields: &Fields, engine: &Engine, now: i64) -> Result<Reply, String> {
    let time =
        |name: &str, default: &str| parse_time(fields.get(name).unwrap_or(default), now).map_err(|e| e.to_string());
    let (from, until) = (time("from", "-1d")?, time("until", "now")?);
    if from >= until {
        return Err(format!("from ({from}) must be before until ({until})"));
    }
    let format = fields.get("format").unwrap_or("svg");
    if !matches!(format, "json" | "csv" | "svg") {
        return Err(format!("format {format:?} is not supported (json, csv, svg, pickle)"));
    }
    let max_data_points = number::<usize>(fields, "maxDataPoints")?;
    let mut fetcher = Fetcher::new(engine);
    let mut series = Vec::new();
    for target in fields.all("target").filter(|t| !t.trim().is_empty()) {
        let parsed = expr::parse(target).map_err(|e| format!("target {target:?}: {e}"))?;
        let mut fetch = |path: &str, from: i64, until: i64| fetcher.fetch(path, from, until);
        let found = evaluate(&parsed, from, until, &mut fetch).map_err(|e| format!("target {target:?}: {e}"))?;
        series.extend(found);
    }
    Ok(match format {
        "json" => {
            let options = JsonOptions {
                max_data_points,
                no_null_points: flag(fields, "noNullPoints"),
            };
            Reply::ok(JSON, render_json(series, options).into_bytes())
        }
        "csv" => Reply::ok("text/csv", render_csv(&series).into_bytes()),
        _ => {
            let side = |name: &str, default: u32| -> Result<u32, String> {
                Ok(number::<u32>(fields, name)?.unwrap_or(default).clamp(1, MAX_IMAGE_SIDE))
            };
            let defaults = SvgOptions::default();
            let options = SvgOptions {
                width: side("width", defaults.width)?,
                height: side("height", defaults.height)?,
                title: fields.get("title").filter(|t| !t.is_empty()).map(str::to_string),
            };
            // No more points than pixels, as graphite-web draws them.
            consolidate_to_max_data_points(&mut series, options.width as usize);
            Reply::ok("image/svg+xml", render_svg(&series, &options).into_bytes())
        }
    })
}

fn pattern(query: &str) -> Result<PathPattern, String> {
    PathPattern::parse(query).map_err(|e| format!("query {query:?}: {e}"))
}

/// `/metrics/find`: graphite-web's tree JSON (its default `format`).
fn find(fields: &Fields, engine: &Engine) -> Result<Reply, String> {
    let query = fields.get("query").ok_or("missing query")?;
    if let Some(format) = fields.get("format").filter(|f| *f != "treejson") {
        return Err(format!("format {format:?} is not supported (treejson, pickle)"));
    }
    let nodes = pattern(query)?.find(engine.series_from(None).map(|(key, _)| &**key));
    Ok(Reply::ok(
        JSON,
        find_json(query, &nodes, flag(fields, "wildcards"), false).into_bytes(),
    ))
}

/// `/metrics/expand`: the paths of every `query`, leaves only with
/// `leavesOnly`.
fn expand(fields: &Fields, engine: &Engine) -> Result<Reply, String> {
    let leaves_only = flag(fields, "leavesOnly");
    let mut paths = Vec::new();
    for query in fields.all("query") {
        let nodes = pattern(query)?.find(engine.series_from(None).map(|(key, _)| &**key));
        paths.extend(nodes.into_iter().filter(|n| n.leaf || !leaves_only).map(|n| n.path));
    }
    if paths.is_empty() && fields.get("query").is_none() {
        return Err("missing query".into());
    }
    Ok(Reply::ok(JSON, expand_json(&paths).into_bytes()))
}
