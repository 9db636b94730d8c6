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
use super::reply::{Reply, Sliced, Status, JSON, TEXT};
use crate::engine::{Engine, HttpRoute};
use crate::graphite::expr;
use crate::graphite::expr::Expr;
use crate::graphite::functions::{evaluate, function_json, functions_json, passes_points_through};
use crate::graphite::path::PathPattern;
use crate::graphite::render::{
    consolidate_to_max_data_points, expand_json, find_json, max_data_points_range, CsvAnswer, JsonAnswer, JsonOptions,
};
use crate::graphite::series::Series;
use crate::graphite::svg::{render_svg, SvgOptions};
use crate::graphite::time::parse_time;

/// The graphite-web release whose API this follows, answered by `/version`:
/// Grafana's "1.1.x" setting expects 1.1, and 1.1.10 is the last release.
pub const GRAPHITE_VERSION: &str = "1.1.10";
/// The largest answer body built whole (SVG, `/metrics/*`, `/functions`):
/// 32 MiB, eight times the default `--max-pending-output`, far more than
/// any of them needs (an SVG has at most a point a pixel). Larger: a 400
/// that says to narrow the request. `/render`'s JSON and CSV are not built
/// whole but written in slices ([`Answer::Sliced`]), so this bound does not
/// apply to them.
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

/// An answer: whole, or a body to write in slices.
#[derive(Debug)]
pub enum Answer {
    Whole(Reply),
    /// `200 OK` with a body written a slice at a time (`/render`'s JSON,
    /// CSV and pickle).
    Sliced(Sliced),
}

/// The route of `request`'s path, as `stats` counts it.
pub fn route_of(request: &Request<'_>) -> HttpRoute {
    allows(trimmed(request.path)).map_or(HttpRoute::None, |(_, route)| route)
}

/// Whether `request`'s answer may hold much memory until it is read: it
/// evaluates series (`/render`) or lists keys (`/metrics/*`), up to the
/// fetch bound or [`MAX_ANSWER_BYTES`]. Every other answer is a few KB.
pub fn holds_memory(request: &Request<'_>) -> bool {
    matches!(
        route_of(request),
        HttpRoute::Render | HttpRoute::Find | HttpRoute::Expand
    )
}

/// graphite-web's URL patterns take an optional trailing slash.
fn trimmed(path: &str) -> &str {
    match path {
        "/" => "/",
        path => path.strip_suffix('/').unwrap_or(path),
    }
}

/// The answer to a request whose path or method is refused, known from its
/// head alone: a client waiting to send its body (`Expect: 100-continue`)
/// gets it at once.
pub fn refusal(request: &Request<'_>) -> Option<Reply> {
    let Some((allows, _)) = allows(trimmed(request.path)) else {
        return Some(Reply::error(
            Status::NotFound,
            &format!("no such path: {}", request.path),
        ));
    };
    let allowed = match request.method {
        Method::Get | Method::Head => true,
        Method::Post => allows == Allows::ReadAndPost,
        Method::Other => false,
    };
    if allowed {
        return None;
    }
    let allow = match allows {
        Allows::Read => "GET, HEAD",
        Allows::ReadAndPost => "GET, HEAD, POST",
    };
    Some(Reply {
        allow: Some(allow),
        ..Reply::error(Status::MethodNotAllowed, &format!("{} allows {allow}", request.path))
    })
}

/// The answer to `request`; `now` is the current Unix second.
pub fn answer(request: &Request<'_>, engine: &Engine, now: i64) -> Answer {
    if let Some(refused) = refusal(request) {
        return Answer::Whole(refused);
    }
    let mut fields = Fields::default();
    fields.add(request.query.as_bytes());
    if request.form_body {
        fields.add(request.body);
    }
    let answer = route(trimmed(request.path), &fields, engine, now)
        .unwrap_or_else(|reason| Answer::Whole(Reply::error(Status::BadRequest, &reason)));
    match answer {
        Answer::Whole(reply) if reply.body.len() > MAX_ANSWER_BYTES => Answer::Whole(Reply::error(
            Status::BadRequest,
            &format!(
                "the answer of {} bytes is over {MAX_ANSWER_BYTES}: ask for less (a narrower query or target, a shorter range, maxDataPoints)",
                reply.body.len()
            ),
        )),
        answer => answer,
    }
}

/// What a path allows, and its route.
fn allows(path: &str) -> Option<(Allows, HttpRoute)> {
    let read = Allows::Read;
    Some(match path {
        "/render" => (Allows::ReadAndPost, HttpRoute::Render),
        "/metrics/find" | "/metrics" => (Allows::ReadAndPost, HttpRoute::Find),
        "/metrics/expand" => (Allows::ReadAndPost, HttpRoute::Expand),
        "/functions" => (read, HttpRoute::Functions),
        "/version" => (read, HttpRoute::Version),
        "/tags/autoComplete/tags" | "/tags/autoComplete/values" => (read, HttpRoute::Tags),
        "/" | "/app.js" | "/style.css" => (read, HttpRoute::Page),
        path if path.starts_with("/functions/") => (read, HttpRoute::Functions),
        _ => return None,
    })
}

fn route(path: &str, fields: &Fields, engine: &Engine, now: i64) -> Result<Answer, String> {
    match path {
        // graphite-web's cluster requests (`format=pickle`): cluster.rs.
        "/render" if cluster::wants(fields) => return Ok(Answer::Sliced(cluster::render(fields, engine, now)?)),
        "/metrics/find" | "/metrics" if cluster::wants(fields) => {
            return Ok(Answer::Whole(cluster::find(fields, engine, now)?))
        }
        "/render" => return render(fields, engine, now),
        _ => {}
    }
    Ok(Answer::Whole(match path {
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
    }))
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
fn render(fields: &Fields, engine: &Engine, now: i64) -> Result<Answer, String> {
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
    let mut max_data_points = number::<usize>(fields, "maxDataPoints")?;
    let mut targets = Vec::new();
    for target in fields.all("target").filter(|t| !t.trim().is_empty()) {
        targets.push((
            target,
            expr::parse(target).map_err(|e| format!("target {target:?}: {e}"))?,
        ));
    }
    let mut fetcher = Fetcher::new(engine);
    if let Some(max) =
        max_data_points.filter(|_| format == "json" && targets.iter().all(|t| passes_points_through(&t.1)))
    {
        // Grafana's queries: the series can be consolidated as they are
        // read, once the range they are measured against is known from
        // their shapes alone.
        fetcher.plan();
        let planned = evaluate_all(&targets, from, until, &mut fetcher)?;
        if let Some(range) = max_data_points_range(
            planned
                .iter()
                .map(|s| (s.start, s.end, ((s.end - s.start) / s.step) as usize)),
        ) {
            fetcher.consolidate(range, max);
            max_data_points = None;
        }
    }
    let mut series = evaluate_all(&targets, from, until, &mut fetcher)?;
    Ok(Answer::Whole(match format {
        "json" => {
            let options = JsonOptions {
                max_data_points,
                no_null_points: flag(fields, "noNullPoints"),
            };
            return Ok(Answer::Sliced(Sliced {
                content_type: JSON,
                body: Box::new(JsonAnswer::new(series, options)),
            }));
        }
        "csv" => {
            return Ok(Answer::Sliced(Sliced {
                content_type: "text/csv",
                body: Box::new(CsvAnswer::new(series)),
            }))
        }
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
    }))
}

/// Every target's series, in order.
fn evaluate_all(targets: &[(&str, Expr)], from: i64, until: i64, fetcher: &mut Fetcher) -> Result<Vec<Series>, String> {
    let mut series = Vec::new();
    for (target, parsed) in targets {
        let mut fetch = |path: &str, from: i64, until: i64| fetcher.fetch(path, from, until);
        let found = evaluate(parsed, from, until, &mut fetch).map_err(|e| format!("target {target:?}: {e}"))?;
        series.extend(found);
    }
    Ok(series)
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
